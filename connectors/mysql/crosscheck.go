package mysql

import "github.com/ferry-cdc/ferry"

// What the application asks a mysql source and its configuration, through
// the root package's interfaces, for checks that span the configuration.
var (
	_ ferry.MySQLServer   = (*Config)(nil)
	_ ferry.BackfillSizer = (*Source)(nil)
)

// ServerAddr implements ferry.MySQLServer.
func (c *Config) ServerAddr() string { return c.Addr }

// Login implements ferry.MySQLServer: the source's own address,
// credentials, TLS and timeouts.
func (c *Config) Login() (ferry.ServerLogin, error) {
	t, err := c.ClientTLS()
	if err != nil {
		return ferry.ServerLogin{}, err
	}
	return ferry.ServerLogin{Addr: c.Addr, User: c.User, Password: c.Password, TLS: t,
		ConnectTimeout: c.ConnectTimeout, StartupTimeout: c.StartupTimeout}, nil
}

// ExcludeTable implements ferry.MySQLServer by adding db.table to the
// exclude patterns (a plain name matches only itself).
func (c *Config) ExcludeTable(db, table string) {
	c.Exclude = append(c.Exclude, db+"."+table)
}
