package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// healthCmd asks a running ferry's admin listener whether it is alive
// (/healthz) or ready (/readyz): exit 0 on 200, 1 otherwise. It is the
// probe of the Docker HEALTHCHECK and Kubernetes exec probes, so it needs
// nothing but this binary (the image has no shell and no curl).
func healthCmd(ctx context.Context, args []string, env Env) error {
	c := newCommand("health", env)
	addr := c.fs.String("addr", "", "admin listener HOST:PORT (default: admin.listen of the -c files)")
	ready := c.fs.Bool("ready", false, "check /readyz instead of /healthz")
	timeout := c.fs.Duration("timeout", 3*time.Second, "give up after this long")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	if *timeout <= 0 {
		return usagef("health: --timeout must be positive")
	}
	target := *addr
	if target == "" {
		if len(c.files) == 0 {
			return usagef("health needs -c CONFIG or --addr HOST:PORT")
		}
		cfg, err := c.load()
		if err != nil {
			return err
		}
		if cfg.Admin.Listen == "" {
			return usagef("health: the admin listener is off in %s (admin.listen); pass --addr", strings.Join(c.files, ", "))
		}
		target = cfg.Admin.Listen
	}
	target, err := dialable(target)
	if err != nil {
		return usagef("health: --addr %q: %v", *addr, err)
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	body, err := probe(ctx, "http://"+target+path)
	if err != nil {
		return err
	}
	fmt.Fprint(env.Stdout, body)
	return nil
}

// dialable turns a listen address into one to connect to: an unspecified
// host (":9090", "0.0.0.0:9090", "[::]:9090") means this machine.
func dialable(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

// probe GETs url and returns the body of a 200 answer; any other answer,
// or none, is an error carrying the reason.
func probe(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	body := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("health: %s answered %d: %s", url, resp.StatusCode, body)
	}
	return body + "\n", nil
}
