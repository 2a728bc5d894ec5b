package kafka

import (
	"fmt"
	"os"
	"strings"

	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/kafkawire"
)

// SASL authenticates to the brokers.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or GSSAPI
	// (Kerberos, with client: sarama only); empty: no SASL.
	Mechanism string `yaml:"mechanism" ferry:"enum=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512|GSSAPI"`
	// Username is the PLAIN or SCRAM user (GSSAPI: see gssapi.username).
	Username string `yaml:"username"`
	// Password is the PLAIN or SCRAM password.
	Password ferry.Secret `yaml:"password"`
	// GSS is the Kerberos login of mechanism GSSAPI.
	GSS GSSAPI `yaml:"gssapi"`
}

// GSSAPI is the Kerberos (SASL GSSAPI) login, done by sarama's Kerberos
// client (gokrb5): a ticket-granting ticket for username@realm, then a
// service ticket for service_name/<broker host> for each broker.
type GSSAPI struct {
	// Auth is how Ferry logs in to the KDC: with a keytab (keytab_file)
	// or a password.
	Auth string `yaml:"auth" ferry:"default=keytab,enum=keytab|password"`
	// KeytabFile holds the key of username@realm (auth: keytab).
	KeytabFile string `yaml:"keytab_file" ferry:"example=/etc/ferry/ferry.keytab"`
	// Username is the client principal without the realm, e.g. ferry or
	// ferry/host.example.com.
	Username string `yaml:"username" ferry:"example=ferry"`
	// Password of the principal (auth: password).
	Password ferry.Secret `yaml:"password"`
	// Realm of the principal; by default the default_realm of
	// kerberos_config_file.
	Realm string `yaml:"realm" ferry:"example=EXAMPLE.COM"`
	// ServiceName is the brokers' service principal name (their
	// sasl.kerberos.service.name): tickets are asked for
	// service_name/<broker host>.
	ServiceName string `yaml:"service_name" ferry:"default=kafka"`
	// KerberosConfigFile is the krb5.conf naming the realm's KDCs.
	KerberosConfigFile string `yaml:"kerberos_config_file" ferry:"default=/etc/krb5.conf"`
	// DisablePAFXFAST turns off the PA-FX-FAST pre-authentication, for
	// KDCs (older Active Directory) that reject it.
	DisablePAFXFAST bool `yaml:"disable_pafx_fast"`
}

// wire is the block as the franz-go clients take it (no GSSAPI).
func (s *SASL) wire() *kafkawire.SASL {
	return &kafkawire.SASL{Mechanism: s.Mechanism, Username: s.Username, Password: s.Password}
}

// validate reports every invalid key of the block for the given client.
func (s *SASL) validate(client string) []error {
	if s.Mechanism != "GSSAPI" {
		errs := s.wire().Validate()
		if s.GSS != *ferry.Defaults[GSSAPI]() && s.GSS != (GSSAPI{}) {
			errs = append(errs, ferry.Invalid("sasl.gssapi", "is used only with mechanism: GSSAPI"))
		}
		return errs
	}
	var errs []error
	if client != clientSarama {
		errs = append(errs, ferry.Invalid("client", "%s does not implement sasl.mechanism GSSAPI (Kerberos): set client: sarama", client))
	}
	if s.Username != "" || s.Password.IsSet() {
		errs = append(errs, ferry.Invalid("sasl.username", "is not used by GSSAPI: set sasl.gssapi.username (and password or keytab_file)"))
	}
	_, gerrs := s.GSS.load()
	return append(errs, gerrs...)
}

// kerberos is a GSSAPI block checked against its files.
type kerberos struct {
	realm string
}

// load reads krb5.conf and the keytab and reports what is wrong with
// them, by key; it returns the realm in effect.
func (g *GSSAPI) load() (kerberos, []error) {
	const p = "sasl.gssapi."
	var errs []error
	if g.Username == "" {
		errs = append(errs, ferry.Invalid(p+"username", "is required with mechanism GSSAPI (the client principal without the realm, e.g. ferry)"))
	}
	if g.ServiceName == "" {
		errs = append(errs, ferry.Invalid(p+"service_name", "must not be empty (the brokers' sasl.kerberos.service.name, usually kafka)"))
	}
	k := kerberos{realm: g.Realm}
	if cfg, err := loadKrb5Conf(g.KerberosConfigFile); err != nil {
		errs = append(errs, ferry.Invalid(p+"kerberos_config_file", "%v", err))
	} else if k.realm == "" {
		if k.realm = cfg.LibDefaults.DefaultRealm; k.realm == "" {
			errs = append(errs, ferry.Invalid(p+"realm", "is required: %s names no default_realm", g.KerberosConfigFile))
		}
	}
	switch g.Auth {
	case "keytab":
		if g.Password.IsSet() {
			errs = append(errs, ferry.Invalid(p+"password", "is not used with auth: keytab"))
		}
		if g.KeytabFile == "" {
			errs = append(errs, ferry.Invalid(p+"keytab_file", "is required with auth: keytab"))
		} else if err := checkKeytab(g.KeytabFile, g.Username, k.realm); err != nil {
			errs = append(errs, ferry.Invalid(p+"keytab_file", "%v", err))
		}
	case "password":
		if g.KeytabFile != "" {
			errs = append(errs, ferry.Invalid(p+"keytab_file", "is not used with auth: password"))
		}
		if !g.Password.IsSet() {
			errs = append(errs, ferry.Invalid(p+"password", "is required with auth: password"))
		}
	}
	return k, errs
}

// loadKrb5Conf reads a krb5.conf the way sarama's Kerberos client will.
func loadKrb5Conf(path string) (*config.Config, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid krb5.conf: %w", path, err)
	}
	if len(cfg.Realms) == 0 && cfg.LibDefaults.DefaultRealm == "" {
		// gokrb5 skips what it cannot parse: any file loads.
		return nil, fmt.Errorf("%s is not a valid krb5.conf: it names no realm ([libdefaults] default_realm, [realms])", path)
	}
	return cfg, nil
}

// checkKeytab reports a keytab that cannot be read or holds no key for
// user@realm (realm empty: any realm).
func checkKeytab(path, user, realm string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	kt := keytab.New()
	if err := kt.Unmarshal(raw); err != nil {
		return fmt.Errorf("%s is not a keytab: %w", path, err)
	}
	if user == "" {
		return nil
	}
	var held []string
	for _, e := range kt.Entries {
		name := strings.Join(e.Principal.Components, "/")
		if name == user && (realm == "" || e.Principal.Realm == realm) {
			return nil
		}
		held = append(held, name+"@"+e.Principal.Realm)
	}
	if len(held) == 0 {
		return fmt.Errorf("%s holds no key", path)
	}
	return fmt.Errorf("%s holds no key for %s@%s (it holds %s)", path, user, realm, strings.Join(dedupe(held), ", "))
}

func dedupe(s []string) []string {
	seen, out := map[string]bool{}, s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
