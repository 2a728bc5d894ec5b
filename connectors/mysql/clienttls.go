package mysql

import "crypto/tls"

// ClientTLS returns the TLS configuration of the source's `tls` block for
// other connections to the same server (the HA lock session, the
// checkpoint table), nil when TLS is disabled.
func (c *Config) ClientTLS() (*tls.Config, error) { return c.TLS.build(c.Addr) }
