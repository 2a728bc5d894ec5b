package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/ferry-cdc/ferry"
)

// Errors a Control returns that the API answers with their own status.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflicts with work in progress")
)

// Control is the work a running Ferry performs on request: backfills and
// replays. Its methods are called from HTTP handlers, concurrently.
type Control interface {
	Backfill(ctx context.Context, source string, req ferry.BackfillRequest) error
	Backfills() []ferry.BackfillProgress
	PauseBackfill(ctx context.Context, source, table string) error
	StartReplay(ctx context.Context, req ReplayRequest) (ReplayStatus, error)
	Replays() []ReplayStatus
	CancelReplay(id string) error
}

// BackfillRequest is the body of POST /backfills.
type BackfillRequest struct {
	Source string `json:"source"`
	ferry.BackfillRequest
}

// PauseRequest is the body of POST /backfills/pause.
type PauseRequest struct {
	Source string `json:"source"`
	Table  string `json:"table"`
}

// ReplayRequest is the body of POST /replays.
type ReplayRequest struct {
	Source    string    `json:"source"`
	From      string    `json:"from"`
	Until     string    `json:"until,omitempty"`
	UntilTime time.Time `json:"until_time,omitzero"`
	Tables    []string  `json:"tables,omitempty"`
	To        []string  `json:"to,omitempty"`
	ServerID  uint32    `json:"server_id,omitempty"`
}

// Replay states.
const (
	ReplayRunning   = "running"
	ReplayDone      = "done"
	ReplayFailed    = "failed"
	ReplayCancelled = "cancelled"
)

// ReplayStatus is one replay of a running Ferry.
type ReplayStatus struct {
	ID      string    `json:"id"`
	Source  string    `json:"source"`
	From    string    `json:"from"`
	At      string    `json:"at,omitempty"`
	End     string    `json:"end,omitempty"`
	Changes uint64    `json:"changes"`
	State   string    `json:"state"`
	Error   string    `json:"error,omitempty"`
	Started time.Time `json:"started"`
}

// Finished reports whether the replay is over.
func (s ReplayStatus) Finished() bool { return s.State != ReplayRunning }

// errorBody is every error answer of the work API; Field names the
// parameter or body field at fault, when one is.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func (s *Server) routeWork(mux *http.ServeMux) {
	mux.HandleFunc("GET /backfills", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.control.Backfills()) })
	mux.HandleFunc("POST /backfills", s.startBackfill)
	mux.HandleFunc("POST /backfills/pause", s.pauseBackfill)
	mux.HandleFunc("GET /replays", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.control.Replays()) })
	mux.HandleFunc("POST /replays", s.startReplay)
	mux.HandleFunc("DELETE /replays/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.control.CancelReplay(r.PathValue("id")); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) startBackfill(w http.ResponseWriter, r *http.Request) {
	var req BackfillRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := s.control.Backfill(r.Context(), req.Source, req.BackfillRequest); err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("backfill requested through the admin API", "source", req.Source, "table", req.Table, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, struct{}{})
}

func (s *Server) pauseBackfill(w http.ResponseWriter, r *http.Request) {
	var req PauseRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := s.control.PauseBackfill(r.Context(), req.Source, req.Table); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) startReplay(w http.ResponseWriter, r *http.Request) {
	var req ReplayRequest
	if !readJSON(w, r, &req) {
		return
	}
	st, err := s.control.StartReplay(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("replay requested through the admin API", "source", req.Source, "from", req.From, "id", st.ID, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, st)
}

// readJSON decodes a request body of at most 1 MB with no unknown fields.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid request body: " + err.Error()})
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, err error) {
	var fe *ferry.FieldError
	status, field := http.StatusInternalServerError, ""
	switch {
	case errors.As(err, &fe):
		status, field = http.StatusBadRequest, fe.Field
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrConflict), errors.Is(err, ferry.ErrConflict):
		status = http.StatusConflict
	}
	writeJSON(w, status, errorBody{Error: err.Error(), Field: field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
