package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/connectors/kafka"
)

// kdc is a throwaway MIT Kerberos KDC (Debian's krb5-kdc) on a private
// port, with its own database, kdc.conf and krb5.conf in a temp dir.
type kdc struct {
	dir, conf, log string
}

const kdcRealm = "FERRY.TEST"

func startKDC(t *testing.T) *kdc {
	t.Helper()
	for _, tool := range []string{"krb5kdc", "kdb5_util", "kadmin.local"} {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				t.Fatalf("%s is required: apt-get install -y krb5-kdc krb5-admin-server (scripts/test.sh installs them)", tool)
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	k := &kdc{dir: t.TempDir()}
	k.conf, k.log = filepath.Join(k.dir, "krb5.conf"), filepath.Join(k.dir, "kdc.log")
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(k.dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("krb5.conf", fmt.Sprintf(`[libdefaults]
 default_realm = %[1]s
 dns_lookup_kdc = false
 dns_lookup_realm = false
 udp_preference_limit = 1
[realms]
 %[1]s = {
  kdc = 127.0.0.1:%[2]d
 }
`, kdcRealm, port))
	write("kdc.conf", fmt.Sprintf(`[kdcdefaults]
 kdc_ports = %[2]d
 kdc_tcp_ports = %[2]d
[realms]
 %[1]s = {
  database_name = %[3]s/principal
  key_stash_file = %[3]s/stash
  acl_file = %[3]s/kadm5.acl
  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
 }
[logging]
 kdc = FILE:%[4]s
`, kdcRealm, port, k.dir, k.log))
	write("kadm5.acl", "")
	env := append(os.Environ(), "KRB5_CONFIG="+k.conf, "KRB5_KDC_PROFILE="+filepath.Join(k.dir, "kdc.conf"))
	run := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("kdb5_util", "create", "-s", "-r", kdcRealm, "-P", "master-pw")
	run("kadmin.local", "-r", kdcRealm, "-q", "addprinc -pw ferry-pw ferry")
	run("kadmin.local", "-r", kdcRealm, "-q", "addprinc -randkey kafka/127.0.0.1")
	run("kadmin.local", "-r", kdcRealm, "-q", "ktadd -norandkey -k "+filepath.Join(k.dir, "ferry.keytab")+" ferry")
	cmd := exec.Command("krb5kdc", "-n", "-r", kdcRealm, "-P", filepath.Join(k.dir, "kdc.pid"))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start krb5kdc: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("krb5kdc does not listen")
		}
	}
	return k
}

// issued reports whether the KDC's log says it issued a ticket of kind
// (AS_REQ, TGS_REQ) to client for server.
func (k *kdc) issued(t *testing.T, kind, client, server string) bool {
	raw, err := os.ReadFile(k.log)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.Contains(l, kind) && strings.Contains(l, "ISSUE") && strings.Contains(l, client+" for "+server) {
			return true
		}
	}
	return false
}

// TestKerberosTicketThenBrokerRefusesGSSAPI: with client: sarama and SASL
// GSSAPI, Ferry logs in to a real KDC (keytab, then password) through
// sarama's Kerberos client and obtains the TGT and the service ticket for
// kafka/127.0.0.1 (the KDC's log says so) before the broker answers. The
// test broker (kfake) does not implement GSSAPI: its SASL handshake
// refuses the mechanism, and the Write fails transiently naming it. A
// login the KDC refuses (wrong password, unknown principal, unknown
// service) fails transiently with the KDC's answer, before any broker is
// contacted. (Without requires_preauth on the principal, MIT's KDC
// answers a wrong password with an AS_REP the client cannot decrypt,
// which gokrb5 reports as "client password/keytab incorrect".)
func TestKerberosTicketThenBrokerRefusesGSSAPI(t *testing.T) {
	k := startKDC(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("PLAIN", "admin", "admin"), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write := func(t *testing.T, mut func(g *kafka.GSSAPI)) error {
		cfg := kafka.DefaultConfig()
		cfg.Client, cfg.Brokers, cfg.Topic, cfg.Timeout = "sarama", c.ListenAddrs(), "orders", 5*time.Second
		cfg.SASL.Mechanism = "GSSAPI"
		g := &cfg.SASL.GSS
		g.Username, g.KeytabFile, g.KerberosConfigFile = "ferry", filepath.Join(k.dir, "ferry.keytab"), k.conf
		mut(g)
		s, err := kafka.New("bus", cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		err = s.Write(context.Background(), conntest.Events(1, 1))
		if err == nil {
			t.Fatal("Write succeeded against a broker without GSSAPI")
		}
		if ferry.IsPermanent(err) {
			t.Fatalf("Write = %v: want a transient error", err)
		}
		var be *ferry.BatchError
		if errors.As(err, &be) {
			t.Fatalf("Write = %v: want a batch-wide error (nothing sent)", err)
		}
		t.Logf("Write = %v", err)
		return err
	}
	for _, auth := range []string{"keytab", "password"} {
		t.Run(auth, func(t *testing.T) {
			err := write(t, func(g *kafka.GSSAPI) {
				if auth == "password" {
					g.Auth, g.KeytabFile, g.Password = "password", "", "ferry-pw"
				}
			})
			client, service := "ferry@"+kdcRealm, "kafka/127.0.0.1@"+kdcRealm
			if !k.issued(t, "AS_REQ", client, "krbtgt/"+kdcRealm+"@"+kdcRealm) || !k.issued(t, "TGS_REQ", client, service) {
				t.Fatalf("the KDC issued no TGT and service ticket for %s to %s; its log:\n%s", service, client, readFile(t, k.log))
			}
			if !strings.Contains(err.Error(), "the broker refused SASL mechanism GSSAPI") {
				t.Fatalf("Write = %v: want the broker's refusal of the SASL mechanism", err)
			}
		})
	}
	refused := []struct {
		name string
		mut  func(g *kafka.GSSAPI)
		want string
	}{
		{"wrong password", func(g *kafka.GSSAPI) { g.Auth, g.KeytabFile, g.Password = "password", "", "wrong" }, "client password/keytab incorrect"},
		{"unknown principal", func(g *kafka.GSSAPI) { g.Auth, g.KeytabFile, g.Username, g.Password = "password", "", "nobody", "x" },
			"KDC_ERR_C_PRINCIPAL_UNKNOWN"},
		{"unknown service", func(g *kafka.GSSAPI) { g.ServiceName = "kafka-other" }, "KDC_ERR_S_PRINCIPAL_UNKNOWN"},
	}
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			if err := write(t, r.mut); !strings.Contains(err.Error(), r.want) || !strings.Contains(err.Error(), "kerberos: the KDC refused") {
				t.Fatalf("Write = %v: want the KDC's answer %s", err, r.want)
			}
		})
	}
}
