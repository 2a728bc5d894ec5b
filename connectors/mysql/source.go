package mysql

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/retry"
)

// Source tails one server's binlog. See ferry.Source for the lifecycle.
type Source struct {
	name   string
	cfg    *Config
	log    *slog.Logger
	filter *filter
	tls    *tls.Config // nil: plain text

	info *serverInfo
	meta *metaConn
	// out carries decoded transactions from the stream goroutine to Read;
	// gate bounds the changes in it, so a burst of big transactions cannot
	// pile up in memory ahead of the pipeline's own in-flight limit.
	out    chan ferry.Batch
	gate   *gate
	errc   chan error
	err    error        // sticky fatal error, returned by every Read after it
	held   *ferry.Batch // read from out, returned by the next Read (too big to merge)
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// state and live serve Status from any goroutine (see status.go).
	state atomic.Uint32
	live  atomic.Pointer[stream]

	// start is where a run without a checkpoint began (see StartPosition).
	start ferry.Position
	// serverID is the server_id of the server streamed from, recorded in
	// positions; checkResume updates it on every (re)connect.
	serverID atomic.Uint32
	// instance names the Ferry process, for the replica host (SetInstance).
	instance   string
	history    SchemaHistory // nil: the schema history is kept in memory only
	quarantine QuarantineStore
	jobs       *jobList
	st         *stream
	// role is what the source does with its stream: follow it (streaming),
	// backfill one table (backfillRun) or re-read a range (replayRun).
	role role
	// replicaID is the server_id this source registers with as a replica.
	replicaID uint32
}

var _ ferry.Source = (*Source)(nil)

// New returns an unopened source that streams the binlog forever and runs
// backfills on request, registering as cfg.ServerID.
func New(name string, cfg *Config, log *slog.Logger) (*Source, error) {
	return newSource(name, cfg, cfg.ServerID, streaming{}, log)
}

// newSource returns an unopened source that does r, registering with the
// server as replica serverID.
func newSource(name string, cfg *Config, serverID uint32, r role, log *slog.Logger) (*Source, error) {
	if err := ferry.CheckConfig(cfg); err != nil {
		return nil, fmt.Errorf("mysql source %s: %w", name, err)
	}
	f, err := newFilter(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tlsCfg, err := cfg.TLS.build(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("mysql source %s: %w", name, err)
	}
	return &Source{name: name, cfg: cfg, log: log, filter: f, tls: tlsCfg, errc: make(chan error, 1), jobs: newJobList(name),
		role: r, replicaID: serverID}, nil
}

// Open connects, checks the server, and starts streaming from `from` (a
// checkpoint) or, when nil, from the configured start. An unreachable server
// is retried for StartupTimeout; configuration problems fail at once.
func (s *Source) Open(ctx context.Context, from ferry.Position) error {
	conn, err := s.connectWithRetry(ctx)
	if err != nil {
		return err
	}
	s.info, err = s.preflight(conn)
	if err != nil {
		conn.Close()
		return err
	}
	s.meta = &metaConn{src: s, conn: conn}
	st, err := s.prepareStream(ctx, conn, from)
	if err != nil {
		s.meta.close()
		return err
	}
	if err := s.attachSchemaHistory(ctx, conn, st); err != nil {
		s.meta.close()
		return err
	}
	if err := s.checkServerIDFree(ctx, conn); err != nil {
		s.meta.close()
		return err
	}
	if from == nil {
		s.start = st.checkpoint(st.committed)
	}
	c, err := s.startStream(ctx, st.committed)
	if err != nil {
		s.meta.close()
		return err
	}
	st.status.start(st.readPos, time.Now())
	s.live.Store(st)
	s.setState(stateStreaming)
	s.log.Info("streaming binlog", "server", s.info.version, "flavor", s.info.flavor, "from", st.committed.String())
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() { s.pump(runCtx, st, c) })
	s.role.run(runCtx, s)
	return nil
}

// StartPosition is the resolved start of a run opened without a checkpoint,
// with the backfills `snapshot: initial` queued; nil otherwise and for a
// replay (which saves no checkpoint).
func (s *Source) StartPosition() ferry.Position { return s.start }

// prepareStream decides where reading starts and what backfills run.
func (s *Source) prepareStream(ctx context.Context, conn *client.Conn, from ferry.Position) (*stream, error) {
	from, err := s.restoreJobs(from)
	if err != nil {
		return nil, err
	}
	start, err := s.resolveStart(conn, from)
	if err != nil {
		return nil, err
	}
	st := s.newStream(start)
	return st, s.role.prepare(ctx, s, conn, st, from == nil)
}

func (s *Source) newStream(start position) *stream {
	s.out, s.held = make(chan ferry.Batch, 1024), nil
	s.gate = newGate(int64(s.cfg.BatchSize)*2, int64(s.cfg.MaxTxBufferBytes))
	g := newGTIDTracker(s.info.flavor)
	if start.GTID != "" {
		_ = g.seed(start.GTID) // validated by resolveStart
	}
	pl := &planner{flavor: s.info.flavor, charsets: s.info.charsets, filter: s.filter}
	s.st = &stream{source: s.name, cfg: s.cfg, log: s.log, planner: pl, gtid: g, out: s.out, gate: s.gate,
		file: start.File, committed: start, readPos: start, jobs: s.jobs, serverID: &s.serverID}
	return s.st
}

// connectWithRetry connects, retrying an unreachable server with backoff
// for up to startup_timeout (a sidecar may start before its database).
func (s *Source) connectWithRetry(ctx context.Context) (*client.Conn, error) {
	var conn *client.Conn
	err := retry.New(retry.Reconnect(), retry.Until(time.Now().Add(s.cfg.StartupTimeout))).Do(ctx, func(ctx context.Context) error {
		var err error
		if conn, err = s.connect(ctx); isFatal(err) {
			return retry.Permanent(err)
		}
		return err
	}, func(attempt int, err error, wait time.Duration) {
		s.log.Warn("cannot reach the server yet; retrying", "attempt", attempt, "retry_in", wait.String(), "error", err)
	})
	return conn, err
}

// resolveStart decides where streaming begins and, on MariaDB, the GTID
// state at that point, so the very first checkpoint is already a complete
// resume point.
func (s *Source) resolveStart(conn *client.Conn, from ferry.Position) (position, error) {
	var p position
	switch {
	case from != nil:
		var err error
		if p, err = decodePosition(from); err != nil {
			return position{}, errFatal(fmt.Errorf("mysql source %s: stored checkpoint: %w", s.name, err))
		}
	default:
		mode, _ := parseStart(s.role.start(s.cfg)) // validated
		var err error
		switch {
		case mode.latest:
			p.File, p.Pos, err = s.masterStatus(conn)
		case mode.earliest:
			p.File, p.Pos, err = firstBinlog(conn)
		default:
			p = mode.at
		}
		if err == nil && s.info.flavor == gomysql.MySQLFlavor && s.info.gtidMode && (mode.latest || mode.earliest) {
			p.GTID, err = mysqlGTIDStart(conn, mode)
		}
		if err != nil {
			return position{}, s.explain(err)
		}
		p.ServerID = s.serverID.Load()
	}
	if p.File != "" && p.GTID == "" {
		if err := checkBoundary(conn, p); errors.Is(err, errNotBoundary) {
			return position{}, errFatal(fmt.Errorf("mysql source %s: %w", s.name, err))
		} else if err != nil {
			return position{}, s.explain(err)
		}
	}
	if p.GTID != "" {
		if f, _ := gtidFlavor(p.GTID); f != s.info.flavor {
			return position{}, errFatal(fmt.Errorf("mysql source %s: GTID set %q is %s syntax but the server is %s", s.name, p.GTID, f, s.info.flavor))
		}
		if !s.info.gtidMode {
			return position{}, errFatal(fmt.Errorf("mysql source %s: start position is a GTID set but gtid_mode is OFF on %s", s.name, s.cfg.Addr))
		}
		s.warnMissingDomains(conn, p.GTID)
		return p, nil
	}
	if s.info.flavor == gomysql.MariaDBFlavor {
		gtid, err := binlogGTIDPos(conn, p.File, p.Pos)
		if err != nil {
			return position{}, s.explain(err)
		}
		p.GTID = gtid
	}
	return p, nil
}

func firstBinlog(conn *client.Conn) (string, uint32, error) {
	r, err := conn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return "", 0, err
	}
	if len(r.Values) == 0 {
		return "", 0, errors.New("the server lists no binary logs")
	}
	name, _ := r.GetString(0, 0)
	return name, 4, nil
}

// binlogGTIDPos asks MariaDB for the GTID state at a file position.
func binlogGTIDPos(conn *client.Conn, file string, pos uint32) (string, error) {
	r, err := conn.Execute("SELECT BINLOG_GTID_POS(?, ?)", file, pos)
	if err != nil {
		return "", err
	}
	if len(r.Values) == 0 {
		return "", nil
	}
	v, _ := r.GetString(0, 0)
	return v, nil
}

// warnMissingDomains: a MariaDB domain absent from the resume state is read
// from its first event the server still has. That is right for a domain
// created after the checkpoint and a flood of duplicates otherwise, so say it.
func (s *Source) warnMissingDomains(conn *client.Conn, state string) {
	if s.info.flavor != gomysql.MariaDBFlavor {
		return
	}
	vars, err := globalVariables(conn, "gtid_binlog_pos")
	if err != nil {
		return
	}
	ours := newGTIDTracker(gomysql.MariaDBFlavor)
	server := newGTIDTracker(gomysql.MariaDBFlavor)
	if ours.seed(state) != nil || server.seed(vars["gtid_binlog_pos"]) != nil {
		return
	}
	have := ours.domains()
	for d := range server.domains() {
		if !have[d] {
			s.log.Warn("GTID domain missing from the resume position; its events are read from the oldest binlog still on the server",
				"domain", d, "resume", state)
		}
	}
}

// startStream starts a binlog dump at p and waits for the server's first
// answer, so refused positions and missing privileges fail Open. The
// connection's events wait in its feed until the pump arms it.
func (s *Source) startStream(ctx context.Context, p position) (*binlogConn, error) {
	if err := s.checkResume(p); err != nil {
		return nil, err
	}
	byGTID := p.GTID != "" && (p.File == "" || s.info.gtidMode)
	var set gomysql.GTIDSet
	if byGTID {
		var err error
		if set, err = gomysql.ParseGTIDSet(s.info.flavor, p.GTID); err != nil {
			return nil, s.explainStreamError(err)
		}
	}
	dumps := s.predecessorDumps()
	f := newFeed(s.info.flavor)
	from := dumpStart{pos: p}
	if byGTID {
		from.gtid = set
	}
	d, err := s.openDump(ctx, f, from)
	if err == nil {
		c := &binlogConn{dump: d, feed: f}
		d.start(f)
		if err = s.awaitFirst(ctx, f, dumps); err == nil {
			return c, nil
		}
		c.close()
	}
	if unsupported, ok := explainUnsupportedDump(err, byGTID, s.cfg.Addr, s.name); ok {
		return nil, unsupported
	}
	return nil, s.explainStreamError(err)
}

// awaitFirst waits up to connect_timeout for the server's first event, or
// the error that ended the connection before it. Meanwhile it ends those
// of a predecessor's dumps (predecessorDumps) the server flags as killed.
func (s *Source) awaitFirst(ctx context.Context, f *feed, dumps []uint64) error {
	t := time.NewTimer(s.cfg.ConnectTimeout)
	defer t.Stop()
	var reap <-chan time.Time // nil, never ready, with no predecessor to watch
	if len(dumps) > 0 {
		tick := time.NewTicker(predecessorPoll)
		defer tick.Stop()
		reap = tick.C
	}
	for {
		select {
		case <-f.first:
			return nil
		case err := <-f.ended:
			return err
		case <-reap:
			if dumps = s.endKilledDumps(dumps); len(dumps) == 0 {
				reap = nil
			}
		case <-t.C:
			return fmt.Errorf("%w within connect_timeout (%s) of the dump command", errNoFirstEvent, s.cfg.ConnectTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
