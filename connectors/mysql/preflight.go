package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// Error codes the source turns into advice.
const (
	errDBAccessDenied     = 1044
	errAccessDenied       = 1045
	errSyntax             = 1064
	errSpecificAccess     = 1227
	errFatalReadingBinlog = 1236
	errSlaveSameID        = 4052
)

// serverInfo is what preflight learned about the server.
type serverInfo struct {
	flavor   string
	version  string
	serverID uint32
	gtidMode bool // MySQL gtid_mode=ON; MariaDB always has GTIDs
	// fullMetadata: binlog_row_metadata=FULL, so table maps carry column
	// names; otherwise rows are decoded with the schema history.
	fullMetadata bool
	charsets     charsets
}

func (s *Source) connect(ctx context.Context) (*client.Conn, error) {
	var opts []client.Option
	if s.tls != nil {
		opts = append(opts, func(c *client.Conn) error { c.SetTLSConfig(s.tls); return nil })
	}
	conn, err := client.ConnectWithContext(ctx, s.cfg.Addr, s.cfg.User, s.cfg.Password.Reveal(), "", s.cfg.ConnectTimeout, opts...)
	if err != nil {
		return nil, s.explain(err)
	}
	return conn, nil
}

// explain turns driver errors into one line naming the cause and the fix.
func (s *Source) explain(err error) error {
	var me *gomysql.MyError
	if errors.As(err, &me) {
		if sameServerID(me) {
			return fmt.Errorf("mysql %s: server_id %d is already used by another replica: give every Ferry source its own server_id: %w", s.cfg.Addr, s.replicaID, errFatal(err))
		}
		switch me.Code {
		case errAccessDenied:
			return fmt.Errorf("mysql %s: access denied for user %q: check user and password: %w", s.cfg.Addr, s.cfg.User, errFatal(err))
		case errSpecificAccess, errDBAccessDenied:
			return fmt.Errorf("mysql %s: user %q lacks a privilege (%s): GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO the user (MariaDB 10.5+: also BINLOG MONITOR): %w",
				s.cfg.Addr, s.cfg.User, me.Message, errFatal(err))
		case errFatalReadingBinlog:
			return s.explainBinlogError(me, err)
		}
		return fmt.Errorf("mysql %s: %w", s.cfg.Addr, err)
	}
	if msg, ok := tlsProblem(err); ok {
		return fmt.Errorf("mysql %s: tls (mode %s): %s: %w", s.cfg.Addr, s.cfg.TLS.Mode, msg, errFatal(err))
	}
	return fmt.Errorf("mysql %s: cannot connect: %w (is the server running and reachable?)", s.cfg.Addr, err)
}

// tlsProblem recognizes TLS failures, which retrying cannot fix: the server
// does not offer TLS, or its certificate does not verify.
func tlsProblem(err error) (string, bool) {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &hostname):
		return "the server certificate does not name this host (set tls.server_name, or use verify-ca)", true
	case errors.As(err, &unknownCA):
		return "the server certificate is not signed by a trusted CA (check tls.ca_file)", true
	case errors.As(err, &invalid), errors.As(err, &verify):
		return "the server certificate does not verify", true
	case strings.Contains(err.Error(), "does not support TLS"):
		return "the server does not offer TLS (configure ssl_cert/ssl_key on it, or set tls.mode: disabled)", true
	case strings.Contains(err.Error(), "verify-ca:"):
		return "the server certificate is not signed by a trusted CA (check tls.ca_file)", true
	}
	return "", false
}

func (s *Source) explainBinlogError(me *gomysql.MyError, err error) error {
	msg := strings.ToLower(me.Message)
	switch {
	case strings.Contains(msg, "could not find first log file") || strings.Contains(msg, "purged") ||
		strings.Contains(msg, "could not find gtid") || strings.Contains(msg, "not found in binlog") ||
		strings.Contains(msg, "log event entry exceeded") || strings.Contains(msg, "before the start"):
		return s.role.explainLostStart(s.cfg.Addr, errFatal(err))
	}
	return fmt.Errorf("mysql %s: binlog stream refused: %w", s.cfg.Addr, errFatal(err))
}

// sameServerID recognizes "another replica uses this server_id": MySQL
// reports it as 1236, MariaDB as 4052 (ER_SLAVE_SAME_ID).
func sameServerID(me *gomysql.MyError) bool {
	msg := strings.ToLower(me.Message)
	return me.Code == errSlaveSameID || strings.Contains(msg, "same server_uuid/server_id") || strings.Contains(msg, "same server_id")
}

// explainStreamError: the stream authenticates with credentials preflight
// already accepted, so an access error there is a missing REPLICATION SLAVE
// (MariaDB answers COM_REGISTER_SLAVE without it with 1045).
func (s *Source) explainStreamError(err error) error {
	var me *gomysql.MyError
	if errors.As(err, &me) && (me.Code == errAccessDenied || me.Code == errSpecificAccess) {
		return fmt.Errorf("mysql %s: user %q may not read the binlog: GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO the user (or its password changed): %w",
			s.cfg.Addr, s.cfg.User, errFatal(err))
	}
	if errors.Is(err, errNoFirstEvent) {
		return fmt.Errorf("mysql %s: the server took the binlog dump but sent nothing: %w (a replica with server_id %d may still hold its dump)",
			s.cfg.Addr, err, s.replicaID)
	}
	return s.explain(err)
}

// fatalError marks errors that retrying cannot fix.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

func errFatal(err error) error { return &fatalError{err} }

func isFatal(err error) bool {
	var f *fatalError
	return errors.As(err, &f)
}

// preflight checks everything the stream needs before it starts, so a
// misconfigured server fails with advice instead of producing bad events.
func (s *Source) preflight(conn *client.Conn) (*serverInfo, error) {
	info := &serverInfo{}
	vars, err := globalVariables(conn, "version", "log_bin", "binlog_format", "binlog_row_image",
		"binlog_row_metadata", "server_id", "gtid_mode", "lower_case_table_names")
	if err != nil {
		return nil, s.explain(err)
	}
	info.version = vars["version"]
	info.flavor = gomysql.MySQLFlavor
	if strings.Contains(strings.ToLower(info.version), "mariadb") {
		info.flavor = gomysql.MariaDBFlavor
	}
	if s.cfg.Flavor != "auto" && s.cfg.Flavor != info.flavor {
		return nil, errFatal(fmt.Errorf("mysql %s: flavor is set to %s but the server is %s (%s)", s.cfg.Addr, s.cfg.Flavor, info.flavor, info.version))
	}
	info.gtidMode = info.flavor == gomysql.MariaDBFlavor || strings.EqualFold(vars["gtid_mode"], "ON")
	info.fullMetadata = strings.EqualFold(vars["binlog_row_metadata"], "FULL")
	if id, err := strconv.ParseUint(vars["server_id"], 10, 32); err == nil {
		info.serverID = uint32(id)
		s.serverID.Store(info.serverID)
	}
	s.filter.setTableNameCase(vars["lower_case_table_names"])
	if err := s.checkSettings(vars); err != nil {
		return nil, errFatal(err)
	}
	if vars["server_id"] == fmt.Sprint(s.replicaID) {
		return nil, errFatal(fmt.Errorf("mysql %s: server_id %d is the server's own server_id: choose another for the Ferry source", s.cfg.Addr, s.replicaID))
	}
	if info.charsets, err = loadCharsets(conn); err != nil {
		return nil, s.explain(err)
	}
	if _, _, err := s.masterStatus(conn); err != nil {
		return nil, err
	}
	if err := s.role.checkTables(s, conn); err != nil {
		return nil, err
	}
	return info, nil
}

func (s *Source) checkSettings(vars map[string]string) error {
	want := []struct{ name, value, fix string }{
		{"log_bin", "ON", "start the server with --log-bin"},
		{"binlog_format", "ROW", "SET GLOBAL binlog_format=ROW (and binlog_format=ROW in the server config)"},
		{"binlog_row_image", "FULL", "SET GLOBAL binlog_row_image=FULL (and in the server config)"},
	}
	var problems []string
	for _, w := range want {
		got, ok := vars[w.name]
		switch {
		case !ok || !strings.EqualFold(got, w.value) && !(w.name == "log_bin" && got == "1"):
			problems = append(problems, fmt.Sprintf("%s is %s, Ferry needs %s: %s", w.name, orNone(got), w.value, w.fix))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("mysql %s: %s", s.cfg.Addr, strings.Join(problems, "; "))
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "unset"
	}
	return s
}

func globalVariables(conn *client.Conn, names ...string) (map[string]string, error) {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "'" + n + "'"
	}
	r, err := conn.Execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + strings.Join(quoted, ",") + ")")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i := range r.Values {
		k, _ := r.GetString(i, 0)
		v, _ := r.GetString(i, 1)
		out[strings.ToLower(k)] = v
	}
	return out, nil
}

func loadCharsets(conn *client.Conn) (charsets, error) {
	r, err := conn.Execute("SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS")
	if err != nil {
		return nil, err
	}
	cs := charsets{}
	for i := range r.Values {
		id, _ := r.GetUint(i, 0)
		name, _ := r.GetString(i, 1)
		cs[id] = name
	}
	return cs, nil
}

// masterStatus returns the server's current binlog file and position; it
// needs REPLICATION CLIENT (MariaDB: BINLOG MONITOR).
func (s *Source) masterStatus(conn *client.Conn) (string, uint32, error) {
	r, err := conn.Execute("SHOW MASTER STATUS")
	var me *gomysql.MyError
	if errors.As(err, &me) && me.Code == errSyntax { // MySQL 8.4 renamed it
		r, err = conn.Execute("SHOW BINARY LOG STATUS")
	}
	if err != nil {
		return "", 0, s.explain(err)
	}
	if len(r.Values) == 0 {
		return "", 0, errFatal(fmt.Errorf("mysql %s: SHOW MASTER STATUS is empty: binary logging is off; start the server with --log-bin", s.cfg.Addr))
	}
	file, _ := r.GetString(0, 0)
	pos, _ := r.GetUint(0, 1)
	return file, uint32(pos), nil
}

// checkIncludedTables fails on include entries without wildcards that name
// no table: a typo would otherwise capture nothing, silently.
func (s *Source) checkIncludedTables(conn *client.Conn) error {
	var missing []string
	for _, p := range s.filter.include {
		if !p.literal() {
			continue
		}
		r, err := conn.Execute("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", p.parts[0], p.parts[1])
		if err != nil {
			return s.explain(err)
		}
		if len(r.Values) == 0 {
			missing = append(missing, p.text)
		}
	}
	if len(missing) > 0 {
		return errFatal(fmt.Errorf("mysql %s: include names tables that do not exist (or that user %q cannot see; GRANT SELECT on them): %s",
			s.cfg.Addr, s.cfg.User, strings.Join(missing, ", ")))
	}
	return nil
}

var jsonCheck = regexp.MustCompile("(?i)json_valid\\(`([^`]+)`\\)")

// mariadbJSONColumns finds the columns of a table declared JSON: MariaDB
// stores JSON as LONGTEXT with a json_valid CHECK constraint, and nothing in
// the binlog says so.
func mariadbJSONColumns(conn *client.Conn, db, table string) (map[string]bool, error) {
	r, err := conn.Execute("SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?", db, table)
	if err != nil {
		return nil, fmt.Errorf("read JSON columns of %s.%s: %w", db, table, err)
	}
	cols := map[string]bool{}
	for i := range r.Values {
		clause, _ := r.GetString(i, 0)
		for _, m := range jsonCheck.FindAllStringSubmatch(clause, -1) {
			cols[m[1]] = true
		}
	}
	return cols, nil
}
