package mysql

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/ferry-cdc/ferry"
)

// SchemaVersionView is one version of a table's schema as `ferry schema
// show` prints it.
type SchemaVersionView struct {
	Table   string   `json:"table"`
	At      string   `json:"at"` // FILE:POS it took effect at
	Origin  string   `json:"origin"`
	State   string   `json:"state"` // present, dropped, unknown or quarantined
	Columns []string `json:"columns,omitempty"`
	Key     []string `json:"key,omitempty"`
	DDL     string   `json:"ddl,omitempty"`
	Reason  string   `json:"reason,omitempty"` // why a quarantined table is; the quarantine a resync lifted
}

// Resync is what a schema resync recorded.
type Resync struct {
	// At is the position the re-read schema is in force from.
	At string `json:"at"`
	// ReplayFrom and ReplayUntil, when set, are the range whose rows of the
	// table were dead-lettered by the quarantine the resync lifted: the
	// table was quarantined by an unreadable DDL and nothing changed it
	// since, so its schema of today is recorded in force from that DDL on
	// (At is ReplayFrom) and `ferry replay --table T --from ReplayFrom
	// --until ReplayUntil` delivers those rows, with their original ids.
	ReplayFrom  string `json:"replay_from,omitempty"`
	ReplayUntil string `json:"replay_until,omitempty"`
}

// ShowSchemaHistory returns the schema history of source: every version,
// or with at (FILE:POS) only those in force there; with table (db.table)
// only that table's.
func ShowSchemaHistory(ctx context.Context, store SchemaHistory, source, table, at string) ([]SchemaVersionView, error) {
	h, err := loadSchemaHistory(ctx, store, source)
	if err != nil {
		return nil, err
	}
	var when *position
	if at != "" {
		p, err := parsePositionText(at)
		if err != nil || p.File == "" {
			// A field error: the admin API answers it 400, naming the parameter.
			return nil, ferry.Invalid("at", "%q: want FILE:POS (%v)", at, err)
		}
		when = &p
	}
	var out []SchemaVersionView
	for _, name := range slices.Sorted(maps.Keys(h.tables)) {
		if table != "" && name != table {
			continue
		}
		vs := h.tables[name]
		if when != nil {
			v := h.inForce(name, *when)
			if v == nil {
				continue
			}
			vs = []schemaVersion{*v}
		}
		for _, v := range vs {
			out = append(out, viewOf(v))
		}
	}
	return out, nil
}

func viewOf(v schemaVersion) SchemaVersionView {
	view := SchemaVersionView{Table: v.Table, At: v.At.String(), Origin: v.Origin, DDL: v.DDL, Reason: v.Quarantined}
	if v.Lifted != "" {
		view.Reason = "quarantine lifted by a resync: " + v.Lifted
	}
	switch {
	case v.Quarantined != "":
		view.State = "quarantined"
	case v.Unknown:
		view.State = "unknown"
	case v.Schema == nil:
		view.State = "dropped"
	default:
		view.State = "present"
		for _, c := range v.Schema.Columns {
			view.Columns = append(view.Columns, c.Name+" "+c.Type)
		}
		view.Key = v.Schema.Key
	}
	return view
}

// ResyncSchema re-reads table (db.table) from information_schema and
// records it at the server's current binlog position: a quarantined
// table's rows decode again from there on (and, when an unreadable DDL
// quarantined it, from that DDL on: see Resync). Run it while no ferry
// streams the source (a running one does it through its admin API).
func ResyncSchema(ctx context.Context, name string, cfg *Config, store SchemaHistory, table string) (Resync, error) {
	s, err := New(name, cfg, nil)
	if err != nil {
		return Resync{}, err
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return Resync{}, err
	}
	defer conn.Close()
	vars, err := globalVariables(conn, "version", "lower_case_table_names")
	if err != nil {
		return Resync{}, s.explain(err)
	}
	s.info = &serverInfo{flavor: gomysql.MySQLFlavor}
	if strings.Contains(strings.ToLower(vars["version"]), "mariadb") {
		s.info.flavor = gomysql.MariaDBFlavor
	}
	s.meta = &metaConn{src: s, conn: conn}
	file, pos, err := s.masterStatus(conn)
	if err != nil {
		return Resync{}, err
	}
	h, err := loadSchemaHistory(ctx, store, name)
	if err != nil {
		return Resync{}, err
	}
	s.filter.setTableNameCase(vars["lower_case_table_names"])
	h.fold = s.filter.foldTables
	return resyncTable(ctx, h, s.meta, table, position{File: file, Pos: pos})
}

// resyncTable records table's schema of today at at. When the table's
// last DDL version is a quarantine by an unreadable DDL at or before at,
// that version is replaced instead: no DDL on the table came after it (each
// would have recorded a version; what follows it, if anything, are
// schemas read from information_schema), so the schema of today is the one
// the DDL made, and the rows dead-lettered since decode with it.
func resyncTable(ctx context.Context, h *schemaHistory, m *metaConn, table string, at position) (Resync, error) {
	db, tb, ok := strings.Cut(table, ".")
	if !ok {
		return Resync{}, fmt.Errorf("--table %q: want DB.TABLE", table)
	}
	t, err := m.readTable(db, tb)
	if err != nil {
		return Resync{}, err
	}
	if t == nil {
		return Resync{}, fmt.Errorf("%s does not exist on the server (or the user may not see it: GRANT SELECT on it)", table)
	}
	name := h.key(db, tb)
	if q := liftable(h.tables[name]); q != nil && comparePositions(q.At, at) <= 0 {
		v := schemaVersion{Table: name, At: q.At, Origin: originResync, DDL: q.DDL, Schema: t, Lifted: q.Quarantined}
		if err := h.put(ctx, v, true); err != nil {
			return Resync{}, err
		}
		// The replay starts after the DDL: its own event is no transaction
		// boundary, the transaction after it is.
		from, err := m.eventEnd(v.At)
		if err != nil {
			return Resync{}, fmt.Errorf("the quarantine of %s is lifted from %s on, but the position after that DDL is unknown: %w", table, v.At, err)
		}
		return Resync{At: v.At.String(), ReplayFrom: from.String(), ReplayUntil: at.String()}, nil
	}
	if err := h.put(ctx, schemaVersion{Table: name, At: at, Origin: originResync, Schema: t}, true); err != nil {
		return Resync{}, err
	}
	return Resync{At: at.String()}, nil
}

// liftable returns the quarantined version of vs a resync may lift: the
// last one, or one followed only by versions read from information_schema
// (the base snapshot, a first read, a resync), which record no change.
func liftable(vs []schemaVersion) *schemaVersion {
	for i := len(vs) - 1; i >= 0; i-- {
		switch v := &vs[i]; {
		case v.Quarantined != "":
			return v
		case v.Origin == originDDL || v.Unknown:
			return nil
		}
	}
	return nil
}

// eventEnd returns where the binlog event at p ends: the next event's
// position (SHOW BINLOG EVENTS' End_log_pos).
func (m *metaConn) eventEnd(p position) (position, error) {
	var end uint64
	err := m.do(func(m *metaConn) error {
		r, err := m.conn.Execute("SHOW BINLOG EVENTS IN '" + gomysql.Escape(p.File) + "' FROM " + strconv.FormatUint(uint64(p.Pos), 10) + " LIMIT 1")
		if err != nil {
			return err
		}
		if len(r.Values) == 0 {
			return fmt.Errorf("no event at %s", p)
		}
		end, err = r.GetUint(0, 4)
		return err
	})
	if err != nil {
		return position{}, fmt.Errorf("read the end of the event at %s: %w", p, err)
	}
	return position{File: p.File, Pos: uint32(end)}, nil
}

// ResyncSchema re-reads table's schema while streaming and records it at
// the stream's read position.
func (s *Source) ResyncSchema(ctx context.Context, table string) (Resync, error) {
	st := s.live.Load()
	if st == nil || st.planner.schemas == nil {
		return Resync{}, fmt.Errorf("mysql source %s is not streaming with a schema history", s.name)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	r, err := resyncTable(ctx, st.planner.schemas, s.meta, table, position{File: st.readPos.File, Pos: st.readPos.Pos})
	if err != nil {
		return Resync{}, err
	}
	st.planner.plans = nil
	return r, nil
}
