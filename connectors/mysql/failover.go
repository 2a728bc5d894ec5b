package mysql

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// Why a resume position cannot be used on the server the source reaches.
// Each is checked before the binlog dump starts, on Open and on every
// reconnect (an address that moves to another server, a VIP or a proxy
// after a failover, is noticed there too).
var (
	// errDiverged: the checkpoint holds transactions the server's binlog
	// lacks, so Ferry delivered changes this server never had.
	errDiverged = errors.New("the server lacks transactions already seen")
	// errPurged: the server purged binlogs holding transactions after the
	// checkpoint, so they can no longer be streamed.
	errPurged = errors.New("the server purged transactions the checkpoint still needs")
	// errForeignPosition: a FILE:POS checkpoint (no GTID) taken on another
	// server; file positions mean nothing across servers.
	errForeignPosition = errors.New("the checkpoint is a file position on another server")
	// errNoFirstEvent: the server took the binlog dump command but sent
	// nothing within connect_timeout.
	errNoFirstEvent = errors.New("no binlog event")
)

// serverGTIDState is what the server reports about the transactions its
// binlog holds, read just before the binlog dump starts.
type serverGTIDState struct {
	serverID uint32
	gtidMode bool // the server has GTIDs (always on MariaDB)
	// MariaDB: @@gtid_binlog_state, the last GTID per domain and server_id
	// in the binlog; oldest, the GTID position before its oldest binlog
	// (BINLOG_GTID_POS of that file's start).
	binlogState, oldest string
	// MySQL: @@gtid_executed and @@gtid_purged.
	executed, purged string
}

// readGTIDState asks the server for its server_id and GTID state; it needs
// no privilege beyond the source's (SHOW BINARY LOGS for MariaDB's oldest).
func readGTIDState(conn *client.Conn, flavor string, gtidMode bool) (serverGTIDState, error) {
	st := serverGTIDState{gtidMode: gtidMode}
	switch {
	case flavor == gomysql.MariaDBFlavor:
		r, err := conn.Execute("SELECT @@GLOBAL.server_id, @@GLOBAL.gtid_binlog_state")
		if err != nil {
			return st, fmt.Errorf("read gtid_binlog_state: %w", err)
		}
		id, _ := r.GetUint(0, 0)
		st.serverID = uint32(id)
		st.binlogState, _ = r.GetString(0, 1)
		file, _, err := firstBinlog(conn)
		if err != nil {
			return st, fmt.Errorf("list binary logs: %w", err)
		}
		if st.oldest, err = binlogGTIDPos(conn, file, 4); err != nil {
			return st, fmt.Errorf("read the GTID position before %s: %w", file, err)
		}
	case gtidMode:
		r, err := conn.Execute("SELECT @@GLOBAL.server_id, @@GLOBAL.gtid_executed, @@GLOBAL.gtid_purged")
		if err != nil {
			return st, fmt.Errorf("read gtid_executed and gtid_purged: %w", err)
		}
		id, _ := r.GetUint(0, 0)
		st.serverID = uint32(id)
		executed, _ := r.GetString(0, 1)
		purged, _ := r.GetString(0, 2)
		st.executed, st.purged = mysqlSetText(executed), mysqlSetText(purged)
	default:
		r, err := conn.Execute("SELECT @@GLOBAL.server_id")
		if err != nil {
			return st, fmt.Errorf("read server_id: %w", err)
		}
		id, _ := r.GetUint(0, 0)
		st.serverID = uint32(id)
	}
	return st, nil
}

// mysqlSetText removes the line breaks MySQL puts after the commas of a
// long GTID set.
func mysqlSetText(s string) string {
	return strings.NewReplacer("\n", "", "\r", "", " ", "").Replace(s)
}

// checkResumable decides whether reading can start at p on the server in
// st. A position with a GTID state resumes by GTID on any server holding
// that state and the transactions after it; a bare FILE:POS only on the
// server it was taken on (p.ServerID 0: unknown, taken as this one).
func checkResumable(flavor string, p position, st serverGTIDState) error {
	if p.GTID == "" || !st.gtidMode {
		if p.ServerID != 0 && p.ServerID != st.serverID {
			return fmt.Errorf("%w: %s is a position in the binlog of server_id %d, and this server is server_id %d",
				errForeignPosition, p, p.ServerID, st.serverID)
		}
		return nil
	}
	if flavor == gomysql.MariaDBFlavor {
		missing, err := mariadbMissing(p.GTID, st.binlogState)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: %s (the server's gtid_binlog_state is %s)", errDiverged, strings.Join(missing, ","), orNone(st.binlogState))
		}
		purged, err := mariadbPurged(p.GTID, st.oldest)
		if err != nil {
			return err
		}
		if len(purged) > 0 {
			return fmt.Errorf("%w: its oldest binlog starts after %s", errPurged, strings.Join(purged, ","))
		}
		return nil
	}
	missing, err := mysqlMinus(p.GTID, st.executed)
	if err != nil {
		return err
	}
	if missing != "" {
		return fmt.Errorf("%w: %s (the server's gtid_executed is %s)", errDiverged, missing, orNone(st.executed))
	}
	purged, err := mysqlMinus(st.purged, p.GTID)
	if err != nil {
		return err
	}
	if purged != "" {
		return fmt.Errorf("%w: %s (in gtid_purged)", errPurged, purged)
	}
	return nil
}

// domainServer is a MariaDB GTID's domain and server_id.
type domainServer struct{ domain, server uint32 }

// parseMariaGTIDs parses a comma-separated list of MariaDB GTIDs.
func parseMariaGTIDs(text string) ([]gomysql.MariadbGTID, error) {
	var out []gomysql.MariadbGTID
	for _, part := range strings.Split(text, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		id, err := gomysql.ParseMariadbGTID(part)
		if err != nil {
			return nil, fmt.Errorf("parse MariaDB GTID %q: %w", part, err)
		}
		out = append(out, *id)
	}
	return out, nil
}

// parseMariaPair parses the checkpoint's GTIDs and a list the server
// reported (named by what, for errors).
func parseMariaPair(checkpoint, server, what string) (want, have []gomysql.MariadbGTID, err error) {
	if want, err = parseMariaGTIDs(checkpoint); err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %w", err)
	}
	if have, err = parseMariaGTIDs(server); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	return want, have, nil
}

// mariadbMissing returns the GTIDs of the checkpoint the server's binlog
// does not hold: gtid_binlog_state names, per domain and originating
// server_id, the last GTID written, so D-S-N is there when D-S-M is, M >= N.
// Comparing only sequence numbers per domain would miss the classic
// divergence: the old primary's 0-1-101 was delivered but never
// replicated, and the promoted replica wrote its own 0-2-101.
func mariadbMissing(checkpoint, binlogState string) ([]string, error) {
	want, have, err := parseMariaPair(checkpoint, binlogState, "gtid_binlog_state")
	if err != nil {
		return nil, err
	}
	last := map[domainServer]uint64{}
	for _, id := range have {
		k := domainServer{id.DomainID, id.ServerID}
		last[k] = max(last[k], id.SequenceNumber)
	}
	var missing []string
	for _, id := range want {
		if seq, ok := last[domainServer{id.DomainID, id.ServerID}]; !ok || seq < id.SequenceNumber {
			missing = append(missing, formatMariaGTID(id))
		}
	}
	return missing, nil
}

// mariadbPurged returns, per domain of the checkpoint, the last GTID before
// the server's oldest binlog when that is past the checkpoint: the
// transactions between them are gone. Domains the checkpoint lacks are read
// from the oldest binlog on (see warnMissingDomains).
func mariadbPurged(checkpoint, oldest string) ([]string, error) {
	want, before, err := parseMariaPair(checkpoint, oldest, "the oldest binlog's GTID list")
	if err != nil {
		return nil, err
	}
	seen := map[uint32]uint64{}
	for _, id := range want {
		seen[id.DomainID] = max(seen[id.DomainID], id.SequenceNumber)
	}
	var purged []string
	for _, id := range before {
		if seq, ok := seen[id.DomainID]; ok && id.SequenceNumber > seq {
			purged = append(purged, formatMariaGTID(id))
		}
	}
	sort.Strings(purged)
	return purged, nil
}

// mysqlMinus returns the MySQL GTID set a minus b, "" when a is contained
// in b.
func mysqlMinus(a, b string) (string, error) {
	sa, err := gomysql.ParseMysqlGTIDSet(mysqlSetText(a))
	if err != nil {
		return "", fmt.Errorf("parse MySQL GTID set %q: %w", a, err)
	}
	sb, err := gomysql.ParseMysqlGTIDSet(mysqlSetText(b))
	if err != nil {
		return "", fmt.Errorf("parse MySQL GTID set %q: %w", b, err)
	}
	diff := sa.(*gomysql.MysqlGTIDSet)
	if err := diff.Minus(*sb.(*gomysql.MysqlGTIDSet)); err != nil {
		return "", fmt.Errorf("subtract GTID sets: %w", err)
	}
	return diff.String(), nil
}

// checkResume runs checkResumable against the server the source reaches
// now and remembers its server_id for the positions it records.
func (s *Source) checkResume(p position) error {
	var st serverGTIDState
	err := s.meta.do(func(m *metaConn) error {
		var err error
		st, err = readGTIDState(m.conn, s.info.flavor, s.info.gtidMode)
		return err
	})
	if err != nil {
		return s.explain(err)
	}
	s.serverID.Store(st.serverID)
	err = checkResumable(s.info.flavor, p, st)
	switch {
	case err == nil:
		if p.ServerID != 0 && p.ServerID != st.serverID {
			s.log.Info("resuming on another server than the checkpoint's, by GTID",
				"checkpoint_server_id", p.ServerID, "server_id", st.serverID, "gtid", p.GTID)
		}
		return nil
	case errors.Is(err, errDiverged) && s.live.Load() != nil:
		// A reconnect resumes where reading stood, ahead of what the sinks
		// acknowledged: a restart starts from the checkpoint, which the
		// server may well hold.
		return errFatal(fmt.Errorf("mysql source %s: the server now behind %s (server_id %d) cannot continue at %s: %w; the source stops "+
			"rather than stream another history after what it read: restarted, it resumes from the last acknowledged transaction, "+
			"and is refused again only if the server lacks transactions already delivered", s.name, s.cfg.Addr, st.serverID, p.GTID, err))
	case errors.Is(err, errDiverged):
		return errFatal(fmt.Errorf("mysql source %s: %s (server_id %d) cannot resume at %s: %w; its history diverged from the server the checkpoint "+
			"was taken on (a replica promoted before it received them, a replica without log_slave_updates=ON, or a server restored from "+
			"an older backup); Ferry will not skip or re-deliver by guess: point addr at a server that holds them, or accept the loss with "+
			"`ferry checkpoint set --source %s GTID-SET` to a set this server has and backfill the captured tables",
			s.name, s.cfg.Addr, st.serverID, p.GTID, err, s.name))
	case errors.Is(err, errPurged):
		return errFatal(fmt.Errorf("mysql source %s: %s is no longer in the server's binlogs (purged on %s, server_id %d): %w; "+
			"re-seed with `ferry checkpoint set`/`reset` and backfill the gap", s.name, s.role.describeStart(p), s.cfg.Addr, st.serverID, err))
	case errors.Is(err, errForeignPosition):
		return errFatal(fmt.Errorf("mysql source %s: %s: %w; the checkpoint has no GTID to resume by (gtid_mode is OFF), so Ferry cannot "+
			"tell where it is on this server: find the last delivered transaction in this server's binlog and `ferry checkpoint set "+
			"--source %s FILE:POS`, or enable GTIDs (gtid_mode=ON, enforce_gtid_consistency=ON) so that checkpoints follow failovers",
			s.name, s.cfg.Addr, err, s.name))
	}
	return errFatal(fmt.Errorf("mysql source %s: check the resume position %s on %s: %w", s.name, p, s.cfg.Addr, err))
}

// errUnknownCommand is ER_UNKNOWN_COM_ERROR: the server does not implement
// the binlog dump command asked for.
const errUnknownCommand = 1047

// explainUnsupportedDump turns "command not supported" into the start mode
// that uses the other dump command; ok is false for other errors.
func explainUnsupportedDump(err error, byGTID bool, addr, source string) (_ error, ok bool) {
	var me *gomysql.MyError
	if !errors.As(err, &me) || me.Code != errUnknownCommand {
		return nil, false
	}
	if byGTID {
		return errFatal(fmt.Errorf("mysql %s: the server does not support the binlog dump by GTID (ERROR 1047: %s): start from a file position "+
			"instead: `start: FILE:POS` (SHOW MASTER STATUS), or `ferry checkpoint set --source %s FILE:POS` for a source with a checkpoint",
			addr, me.Message, source)), true
	}
	return errFatal(fmt.Errorf("mysql %s: the server does not support the binlog dump by file position (ERROR 1047: %s): start from a GTID "+
		"set instead: `start: GTID-SET` (SELECT @@gtid_executed for now), or `ferry checkpoint set --source %s GTID-SET` for a source "+
		"with a checkpoint", addr, me.Message, source)), true
}

// mysqlGTIDStart reads the GTID set `latest` or `earliest` resolves to on
// MySQL with gtid_mode=ON (see mysqlStartSet).
func mysqlGTIDStart(conn *client.Conn, mode startMode) (string, error) {
	r, err := conn.Execute("SELECT @@GLOBAL.gtid_executed, @@GLOBAL.gtid_purged")
	if err != nil {
		return "", fmt.Errorf("read gtid_executed and gtid_purged: %w", err)
	}
	executed, _ := r.GetString(0, 0)
	purged, _ := r.GetString(0, 1)
	return mysqlStartSet(mode, executed, purged), nil
}

// mysqlStartSet is the GTID set a start mode resolves to on MySQL with
// gtid_mode=ON, so that the stream uses the GTID dump from the first
// position on: `latest` is everything executed (reading starts with the
// next transaction), `earliest` everything purged (reading starts with the
// oldest transaction still in the binlogs). "" for a FILE:POS or GTID
// start, and for an empty set: the stream then starts by file position and
// takes the state from the first Previous_gtids event.
func mysqlStartSet(mode startMode, executed, purged string) string {
	switch {
	case mode.latest:
		return mysqlSetText(executed)
	case mode.earliest:
		return mysqlSetText(purged)
	}
	return ""
}
