package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/go-mysql-org/go-mysql/server"

	"github.com/ferry-cdc/ferry"
)

// recordingServer is a MySQL server (go-mysql's server package) that
// answers every statement and records, per connection, the statements and
// the commands it is sent: what a replica asks of its source.
type recordingServer struct {
	l  net.Listener
	mu sync.Mutex
	// sent holds each connection's statements and commands, in order.
	sent [][]string
	// dumped is signalled at each binlog dump command.
	dumped chan struct{}
	// processes is what SHOW PROCESSLIST lists: id and command.
	processes [][]any
}

func newRecordingServer(t *testing.T) *recordingServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &recordingServer{l: l, dumped: make(chan struct{}, 16)}
	t.Cleanup(func() { l.Close() })
	go rs.serve()
	return rs
}

func (rs *recordingServer) serve() {
	for {
		c, err := rs.l.Accept()
		if err != nil {
			return
		}
		rs.mu.Lock()
		rs.sent = append(rs.sent, nil)
		h := &recordingHandler{rs: rs, conn: len(rs.sent) - 1}
		rs.mu.Unlock()
		go func() {
			sc, err := server.NewConn(c, "ferry", "secret", h)
			if err != nil {
				c.Close()
				return
			}
			for sc.HandleCommand() == nil {
			}
		}()
	}
}

func (rs *recordingServer) record(conn int, what string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.sent[conn] = append(rs.sent[conn], what)
}

// dumpConnection is what the last connection that sent a dump command
// sent.
func (rs *recordingServer) dumpConnection() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, s := range slices.Backward(rs.sent) {
		if len(s) > 0 && regexp.MustCompile(`^command 0x(12|1e)`).MatchString(s[len(s)-1]) {
			return slices.Clone(s)
		}
	}
	return nil
}

type recordingHandler struct {
	server.EmptyHandler
	rs   *recordingServer
	conn int
}

func (h *recordingHandler) HandleQuery(q string) (*gomysql.Result, error) {
	h.rs.record(h.conn, q)
	if q == "SHOW GLOBAL VARIABLES LIKE 'BINLOG_CHECKSUM'" {
		rs, err := gomysql.BuildSimpleTextResultset([]string{"Variable_name", "Value"}, [][]any{{"binlog_checksum", "CRC32"}})
		if err != nil {
			return nil, err
		}
		return gomysql.NewResult(rs), nil
	}
	if q == "SHOW PROCESSLIST" {
		h.rs.mu.Lock()
		rows := slices.Clone(h.rs.processes)
		h.rs.mu.Unlock()
		rs, err := gomysql.BuildSimpleTextResultset([]string{"Id", "Command"}, rows)
		if err != nil {
			return nil, err
		}
		return gomysql.NewResult(rs), nil
	}
	return nil, nil
}

func (h *recordingHandler) HandleOtherCommand(cmd byte, data []byte) error {
	h.rs.record(h.conn, fmt.Sprintf("command 0x%02x %x", cmd, data))
	if cmd == gomysql.COM_BINLOG_DUMP || cmd == gomysql.COM_BINLOG_DUMP_GTID {
		h.rs.dumped <- struct{}{}
		return errors.New("no binlog here") // ends the dump at once
	}
	return nil
}

// uuids are the random replica UUIDs each connection sets.
var uuids = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// TestDumpCommandsAsGoMySQL: the dump connection sends, statement for
// statement and byte for byte, what go-mysql's BinlogSyncer sent when it
// read the binlog for Ferry (configured as Ferry configured it): by file
// position, by MySQL GTID set (no MySQL server runs here to try it on) and
// by MariaDB GTID state.
func TestDumpCommandsAsGoMySQL(t *testing.T) {
	// One server UUID: go-mysql encodes a set's UUIDs in map order.
	mysqlSet, err := gomysql.ParseMysqlGTIDSet("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7:9-100")
	if err != nil {
		t.Fatal(err)
	}
	mariaSet, err := gomysql.ParseMariadbGTIDSet("0-1-100,1-2-7")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		flavor string
		from   dumpStart
	}{
		{"file position", gomysql.MySQLFlavor, dumpStart{pos: position{File: "mysql-bin.000042", Pos: 1234}}},
		{"file start", gomysql.MariaDBFlavor, dumpStart{pos: position{File: "mariadb-bin.000001"}}},
		{"mysql gtid", gomysql.MySQLFlavor, dumpStart{gtid: mysqlSet}},
		{"mariadb gtid", gomysql.MariaDBFlavor, dumpStart{gtid: mariaSet}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs := newRecordingServer(t) // one port for both: it is in the registration
			want := goMySQLDump(t, rs, c.flavor, c.from)
			got := ferryDump(t, rs, c.flavor, c.from)
			if !slices.Equal(got, want) {
				t.Fatalf("sent\n%q\ngo-mysql sent\n%q", got, want)
			}
		})
	}
}

func testDumpSource(addr, flavor string) *Source {
	cfg := DefaultConfig()
	cfg.Addr, cfg.User, cfg.Password, cfg.ConnectTimeout, cfg.Heartbeat = addr, "ferry", ferry.Secret("secret"), 5*time.Second, 7*time.Second
	return &Source{name: "db", cfg: cfg, log: slog.New(slog.DiscardHandler), replicaID: 4242, info: &serverInfo{flavor: flavor}}
}

// goMySQLDump is what go-mysql's syncer sent, configured as Ferry's
// syncerConfig configured it (MariaDB GTID: its statements in Option and a
// plain dump).
func goMySQLDump(t *testing.T, rs *recordingServer, flavor string, from dumpStart) []string {
	s := testDumpSource(rs.l.Addr().String(), flavor)
	host, portText, _ := net.SplitHostPort(s.cfg.Addr)
	port, _ := strconv.ParseUint(portText, 10, 16)
	cfg := replication.BinlogSyncerConfig{
		ServerID: s.replicaID, Flavor: flavor, Host: host, Port: uint16(port),
		User: s.cfg.User, Password: "secret", Localhost: s.replicaHost(),
		HeartbeatPeriod: s.cfg.Heartbeat, DisableRetrySync: true, RawModeEnabled: true, DiscardGTIDSet: true,
		Logger: slog.New(slog.DiscardHandler),
	}
	maria := from.gtid != nil && flavor == gomysql.MariaDBFlavor
	if maria {
		cfg.Option = func(c *client.Conn) error { return setMariaGTIDState(c, from.gtid) }
	}
	syncer := replication.NewBinlogSyncer(cfg)
	defer syncer.Close()
	var err error
	switch {
	case maria:
		_, err = syncer.StartSync(gomysql.Position{})
	case from.gtid != nil:
		_, err = syncer.StartSyncGTID(from.gtid)
	default:
		_, err = syncer.StartSync(gomysql.Position{Name: from.pos.File, Pos: from.pos.Pos})
	}
	if err != nil {
		t.Fatalf("go-mysql: %v", err)
	}
	return awaitDump(t, rs)
}

func ferryDump(t *testing.T, rs *recordingServer, flavor string, from dumpStart) []string {
	s := testDumpSource(rs.l.Addr().String(), flavor)
	d, err := s.openDump(context.Background(), newFeed(flavor), from)
	if err != nil {
		t.Fatalf("ferry: %v", err)
	}
	defer d.close()
	return awaitDump(t, rs)
}

func awaitDump(t *testing.T, rs *recordingServer) []string {
	t.Helper()
	select {
	case <-rs.dumped:
	case <-time.After(10 * time.Second):
		t.Fatal("no dump command within 10s")
	}
	sent := rs.dumpConnection()
	for i := range sent {
		sent[i] = uuids.ReplaceAllString(sent[i], "UUID")
	}
	return sent
}

// TestCloseKillsOnlyADump: closing a dump connection kills its server
// thread only while the server lists that connection as a binlog dump (after
// a server restart the id may be another client's).
func TestCloseKillsOnlyADump(t *testing.T) {
	for _, command := range []string{"Binlog Dump", "Binlog Dump GTID", "Query", ""} {
		rs := newRecordingServer(t)
		s := testDumpSource(rs.l.Addr().String(), gomysql.MariaDBFlavor)
		d, err := s.openDump(context.Background(), newFeed(gomysql.MariaDBFlavor), dumpStart{pos: position{File: "mariadb-bin.000001"}})
		if err != nil {
			t.Fatal(err)
		}
		awaitDump(t, rs)
		id := uint64(d.conn.GetConnectionID())
		rs.mu.Lock()
		rs.processes = [][]any{{id + 1, "Binlog Dump"}}
		if command != "" {
			rs.processes = append(rs.processes, []any{id, command})
		}
		rs.mu.Unlock()
		d.close()
		kill := "KILL CONNECTION " + strconv.FormatUint(id, 10)
		rs.mu.Lock()
		killed := slices.ContainsFunc(rs.sent, func(s []string) bool { return slices.Contains(s, kill) })
		others := slices.ContainsFunc(rs.sent, func(s []string) bool { return slices.Contains(s, "KILL CONNECTION "+strconv.FormatUint(id+1, 10)) })
		rs.mu.Unlock()
		if want := strings.HasPrefix(command, "Binlog Dump"); killed != want || others {
			t.Errorf("connection listed as %q: killed %v, want %v (another dump killed: %v)", command, killed, want, others)
		}
	}
}
