package cli

import (
	"os"

	"github.com/ferry-cdc/ferry/internal/admin"
	"github.com/ferry-cdc/ferry/internal/config"
)

// Environment variables of the commands that talk to a running ferry.
const (
	envAdminToken      = "FERRY_ADMIN_TOKEN"       // overrides admin.token
	envAdminClientCert = "FERRY_ADMIN_CLIENT_CERT" // client certificate for mutual TLS
	envAdminClientKey  = "FERRY_ADMIN_CLIENT_KEY"
)

// adminClient reaches the admin listener at addr (default admin.listen)
// of the running ferry that cfg configures: over HTTPS when admin.tls is
// set, with the bearer token of FERRY_ADMIN_TOKEN or admin.token.
func adminClient(cfg *config.Config, addr string) (*admin.Client, error) {
	if addr == "" {
		addr = cfg.Admin.Listen
	}
	opts := admin.ClientOptions{Addr: addr, Token: cfg.Admin.Token.Reveal()}
	if t, ok := os.LookupEnv(envAdminToken); ok {
		opts.Token = t
	}
	if cfg.Admin.TLS.Enabled() {
		tlsCfg, err := admin.ClientTLS(cfg.Admin.TLS.CertFile, os.Getenv(envAdminClientCert), os.Getenv(envAdminClientKey))
		if err != nil {
			return nil, err
		}
		opts.TLS = tlsCfg
	}
	return admin.NewClient(opts), nil
}
