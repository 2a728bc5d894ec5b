package admin

import (
	"context"
	"net/http"

	"github.com/ferry-cdc/ferry/connectors/mysql"
)

// Schemas shows and resyncs the schema histories of a running Ferry's
// mysql sources, whose store no other process can open meanwhile. Its
// methods are called from HTTP handlers, concurrently.
type Schemas interface {
	// Show returns the versions of source's history (only table's when
	// set; only those in force at at, a FILE:POS, when set).
	Show(ctx context.Context, source, table, at string) ([]mysql.SchemaVersionView, error)
	// Resync re-reads table's schema at the source's read position and
	// returns where it is in force from (and the range to replay, when it
	// lifted a quarantine).
	Resync(ctx context.Context, source, table string) (mysql.Resync, error)
}

// SchemaResyncRequest is the body of POST /schemas/resync.
type SchemaResyncRequest struct {
	Source string `json:"source"`
	Table  string `json:"table"`
}

// SchemaResync is the answer of POST /schemas/resync: {"at"} and, when
// the resync lifted a quarantine, {"replay_from", "replay_until"}.
type SchemaResync = mysql.Resync

// routeSchemas registers GET /schemas?source=S[&table=T][&at=POS] and
// POST /schemas/resync on the mux of the work API.
func (s *Server) routeSchemas(mux *http.ServeMux, sc Schemas) {
	route(mux, "/schemas", methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		q, err := queryParams(r, "source", "table", "at")
		if err == nil {
			err = required("source", q["source"])
		}
		if err != nil {
			writeError(w, err)
			return
		}
		views, err := sc.Show(r.Context(), q["source"], q["table"], q["at"])
		if err != nil {
			writeError(w, err)
			return
		}
		writeList(w, views)
	}})
	route(mux, "/schemas/resync", methods{http.MethodPost: func(w http.ResponseWriter, r *http.Request) {
		var req SchemaResyncRequest
		if !readJSON(w, r, &req) {
			return
		}
		if err := required("source", req.Source, "table", req.Table); err != nil {
			writeError(w, err)
			return
		}
		res, err := sc.Resync(r.Context(), req.Source, req.Table)
		if err != nil {
			writeError(w, err)
			return
		}
		s.log.Info("table schema resynced through the admin API", "source", req.Source, "table", req.Table, "at", res.At,
			"replay_from", res.ReplayFrom, "replay_until", res.ReplayUntil, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, res)
	}})
}

// SchemaHistory returns a mysql source's schema history from the running
// Ferry.
func (c *Client) SchemaHistory(ctx context.Context, source, table, at string) ([]mysql.SchemaVersionView, error) {
	var out []mysql.SchemaVersionView
	return out, c.call(ctx, http.MethodGet, withQuery("/schemas", "source", source, "table", table, "at", at), nil, &out)
}

// ResyncSchema asks the running Ferry to re-read a table's schema; it
// returns the position the schema is in force from, and the range to
// replay when the resync lifted a quarantine.
func (c *Client) ResyncSchema(ctx context.Context, source, table string) (SchemaResync, error) {
	var out SchemaResync
	err := c.call(ctx, http.MethodPost, "/schemas/resync", SchemaResyncRequest{Source: source, Table: table}, &out)
	return out, err
}
