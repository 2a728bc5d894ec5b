package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHATakeoverFromALeaderFrozenUnderLoad: the leader is frozen (SIGSTOP)
// while the server writes 48 MB of binlog, more than the socket buffers
// between the server and the frozen process hold, so the server's binlog
// dump for it blocks in a write. The rows go to a database the pipeline
// does not read: the server sends every event all the same. Registering
// the same server_id only flags that dump as killed, a blocked write
// notices the flag at net_write_timeout (60 s), and MariaDB starts the
// standby's dump only after the old one has ended. The standby must take
// over and deliver within the lease and connect times all the same, and
// lose nothing.
func TestHATakeoverFromALeaderFrozenUnderLoad(t *testing.T) {
	p := startFencePairHA(t, shared, 20, 20*time.Millisecond, func(string) string {
		return "  lease: mysql\n  renew_interval: 1s\n"
	})
	bulk := "it_frozen_load_bulk"
	if err := shared.Exec(context.Background(), "DROP DATABASE IF EXISTS "+bulk, "CREATE DATABASE "+bulk,
		"CREATE TABLE "+bulk+".b (id INT AUTO_INCREMENT PRIMARY KEY, pad MEDIUMBLOB NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	stop, _ := p.updateKeys(t, seed, 3*time.Millisecond)
	eventually(t, 30*time.Second, "A delivering", func() bool { return p.r.Count() >= 100 })

	frozen, resume := p.freezeA(t)
	const rows, size = 1536, 32 << 10 // 48 MB
	exec1(t, p.db, fmt.Sprintf("INSERT INTO %s.b (pad) SELECT REPEAT('x', %d) FROM seq_1_to_%d", bulk, size, rows))
	t.Logf("wrote %d MB of binlog in %v with A frozen", rows*size>>20, time.Since(frozen).Round(time.Millisecond))

	eventually(t, 30*time.Second, "B leading", func() bool { return roleOf(p.adminB) == "leader" })
	// The lease passes in about 2 s and opening the stream takes well under
	// connect_timeout (10 s); waiting out A's blocked dump took 60 s.
	eventually(t, 20*time.Second, "B delivering", func() bool { return p.deliveredBy(t, "b") })
	t.Logf("B delivered %v after A froze", time.Since(frozen).Round(time.Millisecond))
	logB := p.b.stderr.String()
	if strings.Contains(logB, "streaming failed right after the takeover") {
		t.Errorf("B had to retry opening its stream:\n%s", grepLines(logB, "takeover"))
	}
	if !strings.Contains(logB, "ended the binlog dump of a predecessor") {
		t.Errorf("B did not say it ended A's blocked binlog dump:\n%s", grepLines(logB, "predecessor"))
	}
	resume()
	eventually(t, 10*time.Second, "A standing by", func() bool { return roleOf(p.adminA) == "standby" })
	n := stop()
	arr := p.checkConverged(t)
	checkTakeover(t, arr, "a", "b")
	t.Logf("%d updates, %d events", n, len(arr))
	noPanics(t, map[string]*ferryProc{"A": p.a, "B": p.b})
}
