package admin

import (
	"context"
	"net/http"

	"github.com/ferry-cdc/ferry/internal/state"
)

// DeadLetters lists and replays the dead letters of a running Ferry, whose
// store no other process can open meanwhile. Its methods are called from
// HTTP handlers, concurrently.
type DeadLetters interface {
	// List returns the dead letters, of one sink when sink is not empty,
	// oldest first.
	List(ctx context.Context, sink string) ([]state.DeadLetter, error)
	// Replay re-sends them (of one sink when sink is not empty) and
	// removes those delivered; what fails again stays.
	Replay(ctx context.Context, sink string) (DeadLetterReplay, error)
}

// DeadLetterReplay is the outcome of a replay of dead letters.
type DeadLetterReplay struct {
	Replayed int                 `json:"replayed"`
	Failed   []DeadLetterFailure `json:"failed,omitempty"`
}

// DeadLetterFailure is a dead letter a replay could not deliver.
type DeadLetterFailure struct {
	Seq     uint64 `json:"seq"`
	EventID string `json:"event_id"`
	Error   string `json:"error"`
}

// DeadLetterReplayRequest is the body of POST /deadletters/replay.
type DeadLetterReplayRequest struct {
	Sink string `json:"sink,omitempty"`
}

// routeDeadLetters registers GET /deadletters[?sink=NAME] and POST
// /deadletters/replay on the mux of the work API.
func (s *Server) routeDeadLetters(mux *http.ServeMux, dl DeadLetters) {
	route(mux, "/deadletters", methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		q, err := queryParams(r, "sink")
		if err != nil {
			writeError(w, err)
			return
		}
		letters, err := dl.List(r.Context(), q["sink"])
		if err != nil {
			writeError(w, err)
			return
		}
		writeList(w, letters)
	}})
	route(mux, "/deadletters/replay", methods{http.MethodPost: func(w http.ResponseWriter, r *http.Request) {
		var req DeadLetterReplayRequest
		if !readJSON(w, r, &req) {
			return
		}
		out, err := dl.Replay(r.Context(), req.Sink)
		if err != nil {
			writeError(w, err)
			return
		}
		s.log.Info("dead letters replayed through the admin API", "sink", req.Sink, "replayed", out.Replayed,
			"failed", len(out.Failed), "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, out)
	}})
}

// DeadLetters lists the dead letters of the running Ferry (of one sink
// when sink is not empty).
func (c *Client) DeadLetters(ctx context.Context, sink string) ([]state.DeadLetter, error) {
	var out []state.DeadLetter
	return out, c.call(ctx, http.MethodGet, withQuery("/deadletters", "sink", sink), nil, &out)
}

// ReplayDeadLetters asks the running Ferry to replay its dead letters.
func (c *Client) ReplayDeadLetters(ctx context.Context, sink string) (DeadLetterReplay, error) {
	var out DeadLetterReplay
	return out, c.call(ctx, http.MethodPost, "/deadletters/replay", DeadLetterReplayRequest{Sink: sink}, &out)
}
