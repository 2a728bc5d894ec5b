package mysql

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
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
	Reason  string   `json:"reason,omitempty"` // why a quarantined table is
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
			return nil, fmt.Errorf("--at %q: want FILE:POS (%v)", at, err)
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
// table's rows decode again from there on. Run it while no ferry streams
// the source (a running one does it through its admin API).
func ResyncSchema(ctx context.Context, name string, cfg *Config, store SchemaHistory, table string) (string, error) {
	s, err := New(name, cfg, nil)
	if err != nil {
		return "", err
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	vars, err := globalVariables(conn, "version", "lower_case_table_names")
	if err != nil {
		return "", s.explain(err)
	}
	s.info = &serverInfo{flavor: gomysql.MySQLFlavor}
	if strings.Contains(strings.ToLower(vars["version"]), "mariadb") {
		s.info.flavor = gomysql.MariaDBFlavor
	}
	s.meta = &metaConn{src: s, conn: conn}
	file, pos, err := s.masterStatus(conn)
	if err != nil {
		return "", err
	}
	h, err := loadSchemaHistory(ctx, store, name)
	if err != nil {
		return "", err
	}
	s.filter.setTableNameCase(vars["lower_case_table_names"])
	h.fold = s.filter.foldTables
	at := position{File: file, Pos: pos}
	if err := resyncTable(ctx, h, s.meta, table, at); err != nil {
		return "", err
	}
	return at.String(), nil
}

// resyncTable records table's schema of today at at.
func resyncTable(ctx context.Context, h *schemaHistory, m *metaConn, table string, at position) error {
	db, tb, ok := strings.Cut(table, ".")
	if !ok {
		return fmt.Errorf("--table %q: want DB.TABLE", table)
	}
	t, err := m.readTable(db, tb)
	if err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("%s does not exist on the server (or the user may not see it: GRANT SELECT on it)", table)
	}
	return h.put(ctx, schemaVersion{Table: h.key(db, tb), At: at, Origin: originResync, Schema: t}, true)
}

// ResyncSchema re-reads table's schema while streaming and records it at
// the stream's read position.
func (s *Source) ResyncSchema(ctx context.Context, table string) (string, error) {
	st := s.live.Load()
	if st == nil || st.planner.schemas == nil {
		return "", fmt.Errorf("mysql source %s is not streaming with a schema history", s.name)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	at := st.readPos
	if err := resyncTable(ctx, st.planner.schemas, s.meta, table, at); err != nil {
		return "", err
	}
	st.planner.plans = nil
	return position{File: at.File, Pos: at.Pos}.String(), nil
}
