package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// maxReportHost is the longest host name a replica may register with.
const maxReportHost = 60

// SetInstance names the Ferry process this source runs in (the same across
// its restarts, e.g. derived from the host and state directory). It goes
// into the host name the source registers as a replica, so a restart can
// tell its own crashed predecessor from another Ferry using its server_id.
func (s *Source) SetInstance(id string) { s.instance = id }

// replicaHost is the host name the source registers with.
func (s *Source) replicaHost() string {
	h := "ferry-" + s.name
	if s.instance != "" {
		h += "@" + s.instance
	}
	if len(h) > maxReportHost {
		h = h[len(h)-maxReportHost:] // the instance is the distinguishing part
	}
	return h
}

// checkServerIDFree refuses to register while another replica uses the
// source's server_id: MariaDB and MySQL drop the older connection when a
// newer one registers the same id, so starting would kill a running Ferry.
// A crashed predecessor of this same instance is no conflict; a replica of
// another name gets until its next heartbeat to vanish (the server drops a
// dead replica when a heartbeat fails to send) before the start is refused.
func (s *Source) checkServerIDFree(ctx context.Context, conn *client.Conn) error {
	deadline := time.Now().Add(s.cfg.Heartbeat + 2*time.Second)
	for waited := false; ; waited = true {
		host, used, err := replicaUsing(conn, s.replicaID)
		var me *gomysql.MyError
		switch {
		case errors.As(err, &me):
			s.log.Warn("cannot check whether another replica uses this server_id (SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN "+
				"on MariaDB 10.5+, REPLICATION SLAVE on MySQL); a second Ferry with it would take over this one's stream",
				"server_id", s.replicaID, "error", me.Message)
			return nil
		case err != nil:
			return s.explain(err)
		case !used || host == s.replicaHost():
			return nil
		case time.Now().After(deadline):
			return errFatal(fmt.Errorf("mysql %s: server_id %d is already used by another replica (registered as %q): "+
				"starting would make the server drop it; give every Ferry source its own server_id, or stop the other one first",
				s.cfg.Addr, s.replicaID, host))
		case !waited:
			s.log.Info("a replica with this server_id is registered; waiting one heartbeat to see whether it is alive",
				"server_id", s.replicaID, "host", host)
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// replicaUsing returns the host of the registered replica with serverID.
func replicaUsing(conn *client.Conn, serverID uint32) (string, bool, error) {
	r, err := conn.Execute("SHOW SLAVE HOSTS")
	var me *gomysql.MyError
	if errors.As(err, &me) && me.Code == errSyntax { // MySQL 8.4 knows only the new name
		r, err = conn.Execute("SHOW REPLICAS")
	}
	if err != nil {
		return "", false, err
	}
	for i := range r.Values {
		id, _ := r.GetUint(i, 0)
		if uint32(id) == serverID {
			host, _ := r.GetString(i, 1)
			return strings.TrimSpace(host), true, nil
		}
	}
	return "", false, nil
}
