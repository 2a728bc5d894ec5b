package kafka

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/ferry-cdc/ferry"
)

// writeKrb5 writes a krb5.conf naming realm as the default and a keytab
// holding a key for principal@realm; it returns their paths.
func writeKrb5(t *testing.T, realm, principal string) (conf, kt string) {
	t.Helper()
	dir := t.TempDir()
	conf = filepath.Join(dir, "krb5.conf")
	text := "[libdefaults]\n default_realm = " + realm + "\n[realms]\n " + realm + " = {\n  kdc = 127.0.0.1:1\n }\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	k := keytab.New()
	if err := k.AddEntry(principal, realm, "pw", time.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		t.Fatal(err)
	}
	raw, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	kt = filepath.Join(dir, "ferry.keytab")
	if err := os.WriteFile(kt, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return conf, kt
}

// TestGSSAPIConfig: each bad GSSAPI block is refused at validation, naming
// the key and the reason; a good one builds a sarama configuration with
// the realm taken from krb5.conf.
func TestGSSAPIConfig(t *testing.T) {
	conf, kt := writeKrb5(t, "FERRY.TEST", "ferry")
	good := func(c *Config) {
		c.Client, c.Brokers, c.Topic = clientSarama, []string{"127.0.0.1:9092"}, "t"
		c.SASL.Mechanism = "GSSAPI"
		c.SASL.GSS.Username, c.SASL.GSS.KeytabFile, c.SASL.GSS.KerberosConfigFile = "ferry", kt, conf
	}
	cases := []struct {
		name string
		mut  func(*Config)
		want string // "" is valid
	}{
		{"valid keytab", func(*Config) {}, ""},
		{"valid password", func(c *Config) {
			c.SASL.GSS.Auth, c.SASL.GSS.KeytabFile, c.SASL.GSS.Password = "password", "", "pw"
		}, ""},
		{"franz-go", func(c *Config) { c.Client = clientFranz }, "client: franz-go does not implement sasl.mechanism GSSAPI (Kerberos): set client: sarama"},
		{"no username", func(c *Config) { c.SASL.GSS.Username = "" }, "sasl.gssapi.username: is required"},
		{"missing keytab", func(c *Config) { c.SASL.GSS.KeytabFile = kt + ".gone" }, "sasl.gssapi.keytab_file: cannot read " + kt + ".gone"},
		{"not a keytab", func(c *Config) { c.SASL.GSS.KeytabFile = conf }, "sasl.gssapi.keytab_file: " + conf + " is not a keytab"},
		{"keytab of another principal", func(c *Config) { c.SASL.GSS.Username = "other" },
			"sasl.gssapi.keytab_file: " + kt + " holds no key for other@FERRY.TEST (it holds ferry@FERRY.TEST)"},
		{"no keytab_file", func(c *Config) { c.SASL.GSS.KeytabFile = "" }, "sasl.gssapi.keytab_file: is required with auth: keytab"},
		{"missing krb5.conf", func(c *Config) { c.SASL.GSS.KerberosConfigFile = "/nonexistent/krb5.conf" },
			"sasl.gssapi.kerberos_config_file: cannot read /nonexistent/krb5.conf"},
		{"unreadable krb5.conf", func(c *Config) { c.SASL.GSS.KerberosConfigFile = kt },
			"sasl.gssapi.kerberos_config_file: " + kt + " is not a valid krb5.conf"},
		{"password without password", func(c *Config) { c.SASL.GSS.Auth, c.SASL.GSS.KeytabFile = "password", "" },
			"sasl.gssapi.password: is required with auth: password"},
		{"sasl.username", func(c *Config) { c.SASL.Username = "ferry" }, "sasl.username: is not used by GSSAPI"},
		{"gssapi without GSSAPI", func(c *Config) { c.SASL.Mechanism, c.SASL.Username, c.SASL.Password = "PLAIN", "u", "p" },
			"sasl.gssapi: is used only with mechanism: GSSAPI"},
		{"empty service", func(c *Config) { c.SASL.GSS.ServiceName = "" }, "sasl.gssapi.service_name: must not be empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			good(c)
			tc.mut(c)
			err := ferry.CheckConfig(c)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid block refused: %v", err)
				}
				sc, err := c.saramaConfig()
				if err != nil {
					t.Fatal(err)
				}
				if g := sc.Net.SASL.GSSAPI; g.Realm != "FERRY.TEST" || g.ServiceName != "kafka" || g.Username != "ferry" {
					t.Fatalf("sarama GSSAPI config = %+v", g)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestSaramaVersion: sarama speaks the version key's protocol, refusing
// one older than the idempotent producer.
func TestSaramaVersion(t *testing.T) {
	c := DefaultConfig()
	c.Client, c.Brokers, c.Topic, c.Version = clientSarama, []string{"127.0.0.1:9092"}, "t", "3.7.0"
	sc, err := c.saramaConfig()
	if err != nil || sc.Version.String() != "3.7.0" {
		t.Fatalf("version 3.7.0: %v %v", sc, err)
	}
	c.Version = "0.10.2"
	if err := ferry.CheckConfig(c); err == nil || !strings.Contains(err.Error(), "version: must be a Kafka version of 0.11.0 or later") {
		t.Fatalf("version 0.10.2: %v", err)
	}
}
