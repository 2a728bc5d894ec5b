package mysql

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

const (
	// errNoSuchThread is the server's answer to KILL of a connection that
	// has already gone.
	errNoSuchThread = 1094
	// predecessorPoll is how often a new stream looks for a predecessor's
	// dump to end: the server flags it while handling the new dump command.
	predecessorPoll = 200 * time.Millisecond
)

// A replica registered with this source's server_id and host name is a
// predecessor of this instance: a crashed or frozen run, a deposed HA
// leader, or this process's own dropped connection. Registering the same
// server_id makes the server end the predecessor's binlog dump, but only by
// flagging it: a dump blocked writing to a replica that does not read (a
// process frozen by SIGSTOP or a VM pause, a half-open connection) notices
// the flag when net_write_timeout (60 s by default) ends the write, and
// MariaDB starts the new dump only once the old one has ended, so the new
// stream got nothing for a minute. KILL CONNECTION shuts the socket down
// and ends such a dump at once, so while a new stream waits for its first
// event, the dumps that ran before it and have been killed since are
// killed again, this time for good. Only dumps already flagged are
// touched: the server has decided to end them.

// predecessorDumps returns the ids of the binlog dump threads running now
// when a predecessor of this instance is registered; nil otherwise, or
// when the server does not say.
func (s *Source) predecessorDumps() []uint64 {
	var ids []uint64
	err := s.meta.do(func(m *metaConn) error {
		host, used, err := replicaUsing(m.conn, s.replicaID)
		if err != nil || !used || host != s.replicaHost() {
			return err
		}
		ids, err = threadIDs(m.conn, "Binlog Dump")
		return err
	})
	if err != nil {
		s.log.Warn("cannot list the binlog dumps of a predecessor with this server_id; if one is blocked writing to a frozen replica, "+
			"this stream gets no event until the server's net_write_timeout ends it", "server_id", s.replicaID, "error", err)
		return nil
	}
	return ids
}

// endKilledDumps kills again those of ids the server has flagged as killed
// since, and returns the ids still to watch (none after an error).
func (s *Source) endKilledDumps(ids []uint64) []uint64 {
	var left []uint64
	err := s.meta.do(func(m *metaConn) error {
		killed, err := threadIDs(m.conn, "Killed")
		if err != nil {
			return err
		}
		left = left[:0]
		for _, id := range ids {
			if !slices.Contains(killed, id) {
				left = append(left, id)
				continue
			}
			_, err := m.conn.Execute("KILL CONNECTION " + strconv.FormatUint(id, 10))
			var me *gomysql.MyError
			if err != nil && !(errors.As(err, &me) && me.Code == errNoSuchThread) {
				return fmt.Errorf("kill connection %d: %w", id, err)
			}
			s.log.Info("ended the binlog dump of a predecessor with this server_id that was blocked writing (a replica frozen or gone without closing its connection)",
				"server_id", s.replicaID, "connection", id)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("cannot end the blocked binlog dump of a predecessor with this server_id; this stream gets no event until the server's net_write_timeout ends it "+
			"(the source's user needs to see and kill the predecessor's connection: the same user, or PROCESS and CONNECTION ADMIN)",
			"server_id", s.replicaID, "error", err)
		return nil
	}
	return left
}

// threadIDs returns the ids of the server's connections whose command
// starts with command ("Binlog Dump" also matches MariaDB's "Binlog Dump
// GTID"). SHOW PROCESSLIST, filtered here, rather than a query on
// information_schema.PROCESSLIST: the server answers it without the
// internal temporary table an information_schema query builds.
func threadIDs(conn *client.Conn, command string) ([]uint64, error) {
	r, err := conn.Execute("SHOW PROCESSLIST")
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for i := range r.Values {
		cmd, err := r.GetStringByName(i, "Command")
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(cmd, command) {
			continue
		}
		id, err := r.GetUintByName(i, "Id")
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}
