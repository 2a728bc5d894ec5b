package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/ferry-cdc/ferry"
)

// APIError is an error answer of a running Ferry's admin API.
type APIError struct {
	Status int
	Msg    string
}

func (e *APIError) Error() string { return e.Msg }

// Client calls the admin API of a running Ferry.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for the admin listener addr (host:port as
// configured; a wildcard host is reached on loopback).
func NewClient(addr string) *Client {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return &Client{base: "http://" + addr, http: &http.Client{Timeout: time.Minute}}
}

// Backfill asks the running Ferry to backfill a table.
func (c *Client) Backfill(ctx context.Context, source string, req ferry.BackfillRequest) error {
	return c.call(ctx, http.MethodPost, "/backfills", BackfillRequest{Source: source, BackfillRequest: req}, nil)
}

// Backfills lists the backfills of the running Ferry.
func (c *Client) Backfills(ctx context.Context) ([]ferry.BackfillProgress, error) {
	var out []ferry.BackfillProgress
	return out, c.call(ctx, http.MethodGet, "/backfills", nil, &out)
}

// PauseBackfill pauses a backfill of the running Ferry.
func (c *Client) PauseBackfill(ctx context.Context, source, table string) error {
	return c.call(ctx, http.MethodPost, "/backfills/pause", PauseRequest{Source: source, Table: table}, nil)
}

// StartReplay asks the running Ferry to replay a range.
func (c *Client) StartReplay(ctx context.Context, req ReplayRequest) (ReplayStatus, error) {
	var out ReplayStatus
	return out, c.call(ctx, http.MethodPost, "/replays", req, &out)
}

// Replays lists the replays of the running Ferry.
func (c *Client) Replays(ctx context.Context) ([]ReplayStatus, error) {
	var out []ReplayStatus
	return out, c.call(ctx, http.MethodGet, "/replays", nil, &out)
}

// CancelReplay stops a replay of the running Ferry.
func (c *Client) CancelReplay(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/replays/"+id, nil, nil)
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API of the running ferry at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("admin API %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e errorBody
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: HTTP %d", method, path, resp.StatusCode)
		}
		return &APIError{Status: resp.StatusCode, Msg: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("admin API %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}
