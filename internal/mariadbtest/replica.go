package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ReplicaArgs are the mariadbd options of a replica that can be promoted:
// it writes the transactions it applies into its own binlog, with their
// original GTIDs, so a binlog reader can move to it after a failover.
var ReplicaArgs = []string{"--log-slave-updates=ON", "--skip-slave-start"}

// ReplicateFrom makes s a GTID replica of primary (MASTER_USE_GTID =
// slave_pos) and starts replication. user and password name an account on
// primary with REPLICATION SLAVE. Start s with ReplicaArgs and a server_id
// of its own.
func (s *Server) ReplicateFrom(ctx context.Context, primary *Server, user, password string) error {
	return s.Exec(ctx, "STOP SLAVE", "RESET SLAVE ALL",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%d, MASTER_USER=%s, MASTER_PASSWORD=%s, "+
			"MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1, MASTER_HEARTBEAT_PERIOD=1",
			quote(primary.Host), primary.Port, quote(user), quote(password)),
		"START SLAVE")
}

// WaitGTID waits until s has applied every transaction up to the GTID
// position pos (MASTER_GTID_WAIT), or ctx ends.
func (s *Server) WaitGTID(ctx context.Context, pos string) error {
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	timeout := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	var res int
	if err := db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", pos, timeout.Seconds()).Scan(&res); err != nil {
		return fmt.Errorf("mariadbtest: wait for GTID %s on %s: %w", pos, s.Addr, err)
	}
	if res != 0 {
		return fmt.Errorf("mariadbtest: %s did not reach GTID %s within %v", s.Addr, pos, timeout.Round(time.Second))
	}
	return nil
}

// Promote turns a replica whose primary is gone into a primary: it stops
// receiving, lets the applier finish what was received, then forgets the
// primary (STOP SLAVE, RESET SLAVE ALL). What the old primary committed and
// never sent is not on s afterwards, as in a real failover.
func (s *Server) Promote(ctx context.Context) error {
	if err := s.Exec(ctx, "STOP SLAVE IO_THREAD"); err != nil {
		return err
	}
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	for {
		status, err := slaveStatus(ctx, db)
		if err != nil {
			return err
		}
		if status["Slave_SQL_Running"] != "Yes" {
			return fmt.Errorf("mariadbtest: promote %s: the applier stopped: %s", s.Addr, status["Last_SQL_Error"])
		}
		if strings.Contains(status["Slave_SQL_Running_State"], "read all relay log") {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mariadbtest: promote %s: the applier did not finish: %w (state %q)", s.Addr, ctx.Err(), status["Slave_SQL_Running_State"])
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s.Exec(ctx, "STOP SLAVE", "RESET SLAVE ALL")
}

// slaveStatus returns SHOW SLAVE STATUS as column -> value.
func slaveStatus(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: SHOW SLAVE STATUS: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("mariadbtest: SHOW SLAVE STATUS is empty: not a replica")
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(cols))
	for i, c := range cols {
		out[c] = vals[i].String
	}
	return out, rows.Err()
}

// GTIDState returns @@gtid_binlog_state: the last GTID per domain and
// server_id in s's binlog.
func (s *Server) GTIDState(ctx context.Context) (map[string]uint64, error) {
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var text string
	if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.gtid_binlog_state").Scan(&text); err != nil {
		return nil, fmt.Errorf("mariadbtest: read gtid_binlog_state of %s: %w", s.Addr, err)
	}
	return ParseGTIDState(text)
}

// ParseGTIDState parses a MariaDB GTID list ("0-1-100,0-2-7") into
// "domain-server" -> the highest sequence number.
func ParseGTIDState(text string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, part := range strings.Split(text, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		i := strings.LastIndexByte(part, '-')
		seq, err := strconv.ParseUint(part[i+1:], 10, 64)
		if i <= 0 || err != nil {
			return nil, fmt.Errorf("mariadbtest: bad GTID %q", part)
		}
		out[part[:i]] = max(out[part[:i]], seq)
	}
	return out, nil
}
