package cli

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ferry-cdc/ferry/internal/config"
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
	cfg, err := healthConfig(c, *addr)
	if err != nil {
		return err
	}
	cl, err := adminClient(cfg, *addr)
	if err != nil {
		return err
	}
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	body, err := cl.Get(ctx, path)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	fmt.Fprint(env.Stdout, body)
	return nil
}

// healthConfig is the configuration of the -c files, or with --addr alone
// an empty one (plain HTTP, no token).
func healthConfig(c *command, addr string) (*config.Config, error) {
	if addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, usagef("health: --addr %q: %v", addr, err)
		}
		if len(c.files) == 0 {
			return &config.Config{}, nil
		}
	}
	if len(c.files) == 0 {
		return nil, usagef("health needs -c CONFIG or --addr HOST:PORT")
	}
	cfg, err := c.load()
	if err != nil {
		return nil, err
	}
	if addr == "" && cfg.Admin.Listen == "" {
		return nil, usagef("health: the admin listener is off in %s (admin.listen); pass --addr", strings.Join(c.files, ", "))
	}
	return cfg, nil
}
