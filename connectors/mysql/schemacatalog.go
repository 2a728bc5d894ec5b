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

// catalog reads table schemas from information_schema.
type catalog struct {
	conn    *client.Conn
	mariadb bool
}

// binaryTypes are the information_schema DATA_TYPEs that hold bytes.
var binaryTypes = map[string]bool{
	"binary": true, "varbinary": true, "tinyblob": true, "blob": true, "mediumblob": true, "longblob": true,
	"inet6": true, "inet4": true, "uuid": true, "geometry": true, "point": true, "linestring": true, "polygon": true,
	"multipoint": true, "multilinestring": true, "multipolygon": true, "geometrycollection": true, "geomcollection": true,
}

// tables reads the schemas of every table of the given databases that
// keep says to keep: db.table -> schema.
func (c catalog) tables(dbs []string, keep func(db, table string) bool) (map[string]*tableSchema, error) {
	out := map[string]*tableSchema{}
	if len(dbs) == 0 {
		return out, nil
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?,", len(dbs)), ",") + ")"
	args := make([]any, len(dbs))
	for i, d := range dbs {
		args[i] = d
	}
	r, err := c.conn.Execute("SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.DATA_TYPE, "+
		"IFNULL(c.CHARACTER_SET_NAME, ''), IFNULL(cl.CHARACTER_SET_NAME, '') FROM information_schema.COLUMNS c "+
		"JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE' "+
		"LEFT JOIN information_schema.COLLATIONS cl ON cl.COLLATION_NAME = t.TABLE_COLLATION "+
		"WHERE c.TABLE_SCHEMA IN "+in+" ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION", args...)
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	for i := range r.Values {
		str := func(j int) string { s, _ := r.GetString(i, j); return s }
		db, table := str(0), str(1)
		if !keep(db, table) {
			continue
		}
		name := db + "." + table
		t := out[name]
		if t == nil {
			t = &tableSchema{Charset: strings.ToLower(str(6))}
			out[name] = t
		}
		colType, dataType := str(3), strings.ToLower(str(4))
		col := schemaColumn{Name: str(2), Type: strings.ToLower(colType), Unsigned: strings.Contains(strings.ToLower(colType), "unsigned"),
			Charset: strings.ToLower(str(5))}
		switch {
		case binaryTypes[dataType]:
			col.Charset = "binary"
		case dataType == "enum" || dataType == "set":
			col.Labels = enumLabels(colType)
		case dataType == "json" && c.mariadb: // MariaDB 10.5+ shows JSON columns as json
			col.JSON = true
		}
		t.Columns = append(t.Columns, col)
	}
	if err := c.keys(in, args, out); err != nil {
		return nil, err
	}
	if c.mariadb {
		return out, c.jsonChecks(in, args, out)
	}
	return out, nil
}

func (c catalog) keys(in string, args []any, out map[string]*tableSchema) error {
	r, err := c.conn.Execute("SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS "+
		"WHERE INDEX_NAME = 'PRIMARY' AND TABLE_SCHEMA IN "+in+" ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX", args...)
	if err != nil {
		return fmt.Errorf("read primary keys: %w", err)
	}
	for i := range r.Values {
		db, _ := r.GetString(i, 0)
		table, _ := r.GetString(i, 1)
		col, _ := r.GetString(i, 2)
		if t := out[db+"."+table]; t != nil {
			t.Key = append(t.Key, col)
		}
	}
	return nil
}

// jsonChecks marks MariaDB JSON columns: LONGTEXT with a json_valid CHECK.
func (c catalog) jsonChecks(in string, args []any, out map[string]*tableSchema) error {
	r, err := c.conn.Execute("SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "+
		"WHERE CONSTRAINT_SCHEMA IN "+in, args...)
	if err != nil {
		return fmt.Errorf("read JSON columns: %w", err)
	}
	for i := range r.Values {
		db, _ := r.GetString(i, 0)
		table, _ := r.GetString(i, 1)
		clause, _ := r.GetString(i, 2)
		t := out[db+"."+table]
		if t == nil {
			continue
		}
		for _, m := range jsonCheck.FindAllStringSubmatch(clause, -1) {
			if j := t.column(m[1]); j >= 0 {
				t.Columns[j].JSON = true
			}
		}
	}
	return nil
}

// enumLabels reads the labels of "enum('a','it”s')".
func enumLabels(colType string) []string {
	open, end := strings.IndexByte(colType, '('), strings.LastIndexByte(colType, ')')
	if open < 0 || end <= open {
		return nil
	}
	var labels []string
	s := colType[open+1 : end]
	for len(s) > 0 && s[0] == '\'' {
		var b strings.Builder
		i := 1
		for i < len(s) {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i += 2
					continue
				}
				break
			}
			b.WriteByte(s[i])
			i++
		}
		labels = append(labels, b.String())
		s = strings.TrimPrefix(s[min(i+1, len(s)):], ",")
	}
	return labels
}

// databases returns the default character set of every database.
func (c catalog) databases() (map[string]string, error) {
	r, err := c.conn.Execute("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA")
	if err != nil {
		return nil, fmt.Errorf("read databases: %w", err)
	}
	out := map[string]string{}
	for i := range r.Values {
		db, _ := r.GetString(i, 0)
		cs, _ := r.GetString(i, 1)
		out[db] = strings.ToLower(cs)
	}
	return out, nil
}

// snapshotSchemas reads the captured tables' schemas with the binlog
// position they are in force from (see catalog.snapshot).
func (s *Source) snapshotSchemas(conn *client.Conn) (position, map[string]*tableSchema, map[string]string, error) {
	cat := catalog{conn: conn, mariadb: s.info.flavor == gomysql.MariaDBFlavor}
	dbCharsets, err := cat.databases()
	if err != nil {
		return position{}, nil, nil, s.explainCatalog(err)
	}
	var dbs []string
	for db := range dbCharsets {
		if capturedDatabase(s.filter, db) {
			dbs = append(dbs, db)
		}
	}
	if len(dbs) == 0 && !s.info.fullMetadata { // information_schema shows only what the user may read
		return position{}, nil, nil, errFatal(fmt.Errorf("mysql %s: the binlog carries no column metadata, so Ferry reads table schemas "+
			"from information_schema, and it shows user %q no database with captured tables: GRANT SELECT ON the captured tables (or *.*) TO the user",
			s.cfg.Addr, s.cfg.User))
	}
	at, tables, err := cat.snapshot(dbs, s.filter.table, func() (position, error) {
		file, pos, err := s.masterStatus(conn)
		return position{File: file, Pos: pos}, err
	})
	if err != nil {
		return position{}, nil, nil, s.explainCatalog(err)
	}
	return at, tables, dbCharsets, nil
}

// snapshot reads the schemas of the tables of dbs that keep keeps, with
// the binlog position now returns while they are locked.
//
// information_schema is not part of a transaction's consistent snapshot:
// a DDL committed between reading a position and reading the columns
// would put its schema at a position before the DDL, which the stream
// then applies a second time (and rows between are decoded with columns
// they do not have). So each table is first read in a transaction: the
// shared metadata lock that takes lasts until the ROLLBACK, a DDL on the
// table waits for it, and one under way is logged before the lock is
// granted. Tables created after the listing are left out: the history
// follows them from their CREATE, or reads them at their first row event.
func (c catalog) snapshot(dbs []string, keep func(db, table string) bool, now func() (position, error)) (position, map[string]*tableSchema, error) {
	names, err := c.baseTables(dbs, keep)
	if err != nil {
		return position{}, nil, err
	}
	if _, err := c.conn.Execute("START TRANSACTION"); err != nil {
		return position{}, nil, fmt.Errorf("start the schema snapshot: %w", err)
	}
	defer func() { _, _ = c.conn.Execute("ROLLBACK") }()
	locked := map[[2]string]bool{}
	for _, n := range names {
		_, err := c.conn.Execute("SELECT 1 FROM " + quoteName(n[0]) + "." + quoteName(n[1]) + " LIMIT 0")
		var me *gomysql.MyError
		switch {
		case errors.As(err, &me) && me.Code == errNoSuchTable: // dropped since the listing
			continue
		case err != nil:
			return position{}, nil, fmt.Errorf("lock the schema of %s.%s: %w", n[0], n[1], err)
		}
		locked[n] = true
	}
	at, err := now()
	if err != nil {
		return position{}, nil, err
	}
	tables, err := c.tables(dbs, func(db, table string) bool { return locked[[2]string{db, table}] })
	return at, tables, err
}

// errNoSuchTable is the server's ER_NO_SUCH_TABLE.
const errNoSuchTable = 1146

// baseTables lists the tables ({db, table}) of dbs that keep keeps.
func (c catalog) baseTables(dbs []string, keep func(db, table string) bool) ([][2]string, error) {
	if len(dbs) == 0 {
		return nil, nil
	}
	args := make([]any, len(dbs))
	for i, d := range dbs {
		args[i] = d
	}
	r, err := c.conn.Execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN ("+
		strings.TrimSuffix(strings.Repeat("?,", len(dbs)), ",")+")", args...)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var out [][2]string
	for i := range r.Values {
		db, _ := r.GetString(i, 0)
		table, _ := r.GetString(i, 1)
		if keep(db, table) {
			out = append(out, [2]string{db, table})
		}
	}
	return out, nil
}

// explainCatalog: decoding without column metadata needs information_schema.
func (s *Source) explainCatalog(err error) error {
	var me *gomysql.MyError
	if errors.As(err, &me) && (me.Code == errDBAccessDenied || me.Code == errSpecificAccess || me.Code == 1142 || me.Code == 1143) {
		return errFatal(fmt.Errorf("mysql %s: the binlog carries no column metadata, so Ferry reads table schemas from information_schema, "+
			"and user %q may not (%s): GRANT SELECT ON the captured tables (or *.*) TO the user: %w", s.cfg.Addr, s.cfg.User, me.Message, err))
	}
	return s.explain(err)
}

// readTable reads one table's schema from today's information_schema; nil
// when it does not exist.
func (m *metaConn) readTable(db, table string) (t *tableSchema, err error) {
	err = m.do(func(m *metaConn) error {
		cat := catalog{conn: m.conn, mariadb: m.src.info.flavor == gomysql.MariaDBFlavor}
		all, err := cat.tables([]string{db}, func(d, tb string) bool { return d == db && tb == table })
		t = all[db+"."+table]
		return err
	})
	if err != nil {
		return nil, m.src.explainCatalog(err)
	}
	return t, nil
}

// baseSchemaHistory loads the source's history and, when it has no base
// yet, takes one: the captured tables' schemas in a consistent snapshot.
func (s *Source) baseSchemaHistory(ctx context.Context, conn *client.Conn) (*schemaHistory, error) {
	h, err := loadSchemaHistory(ctx, s.history, s.name)
	if err != nil {
		return nil, fmt.Errorf("mysql source %s: %w", s.name, err)
	}
	h.fold = s.filter.foldTables
	if h.base != nil {
		return h, nil
	}
	began := time.Now()
	at, tables, dbCharsets, err := s.snapshotSchemas(conn)
	if err != nil {
		return nil, err
	}
	took := time.Since(began)
	server, _ := globalVariables(conn, "character_set_server")
	h.base = &historyBase{At: position{File: at.File, Pos: at.Pos}, DBCharsets: dbCharsets, Server: strings.ToLower(server["character_set_server"])}
	for name, t := range tables {
		if h.fold {
			name = strings.ToLower(name)
		}
		if err := h.put(ctx, schemaVersion{Table: name, At: at, Origin: originSnapshot, Schema: t}, false); err != nil {
			return nil, err
		}
	}
	if err := h.saveBase(ctx); err != nil {
		return nil, err
	}
	// information_schema is not transactional and MySQL reports no
	// snapshot position: the base is consistent because DDL on the captured
	// tables waited on their metadata locks while it was read; say how long.
	s.log.Info("schema history started from information_schema", "at", h.base.At.String(), "tables", len(tables),
		"ddl_held_back_for", took.Round(time.Millisecond).String(),
		"how", "metadata locks on the captured tables made their DDL wait while their schemas and the binlog end were read")
	return h, nil
}

// capturedDatabase reports whether db may hold captured tables.
func capturedDatabase(f *filter, db string) bool {
	if systemSchemas[strings.ToLower(db)] {
		return false
	}
	if len(f.include) == 0 {
		return true
	}
	for _, p := range f.include {
		if p.match(f.foldTables, db) {
			return true
		}
	}
	return false
}
