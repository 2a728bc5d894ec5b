package mariadbtest

import (
	"context"
	"os"
	"testing"
)

func TestBinlogServer(t *testing.T) {
	s := StartT(t, Options{ServerID: 7})
	db := s.DB(t, "")
	var logBin int
	var format, image, meta string
	var id uint32
	err := db.QueryRow("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@server_id").
		Scan(&logBin, &format, &image, &meta, &id)
	if err != nil {
		t.Fatal(err)
	}
	if logBin != 1 || format != "ROW" || image != "FULL" || meta != "FULL" || id != 7 {
		t.Fatalf("settings: log_bin=%d format=%s image=%s metadata=%s server_id=%d", logBin, format, image, meta, id)
	}
}

func TestKillRestartKeepsDataAndStopRemovesIt(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Options{NoBinlog: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(ctx, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)", "INSERT INTO d.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.DB(t, "d").QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("after kill+restart: count=%d err=%v", n, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Fatalf("Stop left %s behind", s.Dir)
	}
}
