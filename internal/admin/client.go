package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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
	base  string
	token string
	http  *http.Client
}

// ClientOptions say how to reach a running Ferry's admin listener.
type ClientOptions struct {
	// Addr is admin.listen as configured; a wildcard host is reached on
	// loopback.
	Addr string
	// Token is sent as a bearer token when set.
	Token string
	// TLS, when set, makes the client speak HTTPS (see ClientTLS).
	TLS *tls.Config
}

// NewClient returns a client for the admin listener of opts.
func NewClient(opts ClientOptions) *Client {
	scheme := "http://"
	transport := &http.Transport{Proxy: nil, TLSClientConfig: opts.TLS}
	if opts.TLS != nil {
		scheme = "https://"
	}
	return &Client{base: scheme + Dialable(opts.Addr), token: opts.Token,
		http: &http.Client{Timeout: time.Minute, Transport: transport}}
}

// Dialable turns a listen address into one to connect to: an unspecified
// host (":9090", "0.0.0.0:9090", "[::]:9090") means this machine.
func Dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// Get fetches path and returns the body of a 200 answer; any other answer,
// or none, is an error carrying the status and body.
func (c *Client) Get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return "", err
	}
	c.authorize(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	body := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s%s answered %d: %s", c.base, path, resp.StatusCode, body)
	}
	return body + "\n", nil
}

func (c *Client) authorize(req *http.Request) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
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

// refusalHint explains the access answers, which carry no detail.
var refusalHint = map[int]string{
	http.StatusUnauthorized: " (the running ferry wants its admin.token: configure it, or set FERRY_ADMIN_TOKEN)",
	http.StatusForbidden:    " (without admin.token the running ferry serves this only on loopback)",
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
	c.authorize(req)
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
			e.Error = fmt.Sprintf("%s %s: HTTP %d%s", method, path, resp.StatusCode, refusalHint[resp.StatusCode])
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
