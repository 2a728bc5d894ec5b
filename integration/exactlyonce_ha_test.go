package integration

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// eosReplica is one ferry process of an HA pair with an exactly-once
// Kafka sink.
type eosReplica struct {
	name  string
	admin string
	cfg   string
	p     *ferryProc
}

func (r *eosReplica) start(t *testing.T) { r.p = startFerry(t, r.cfg) }

func (r *eosReplica) delivered() uint64 {
	st, _ := getStatus(r.admin)
	return st.Sinks["bus"].Delivered
}

// TestExactlyOnceUnderHALease runs two replicas of one configuration (a
// mysql lease and a Kafka sink with delivery: exactly_once, so one
// transactional id) under a random write load. The leader is killed with
// SIGKILL mid-load and the standby takes over; the old leader comes back
// as the standby and gets the lease again by a clean stop of the new one;
// then the leader is frozen (SIGSTOP) until the standby has taken over
// and delivered, and resumed (SIGCONT): a zombie that still believes it
// leads. Its next write must be refused (the HA fence, or Kafka fencing
// its epoch when a transaction was open when it froze), and it must say
// so in one line and stand by or exit. A read_committed consumer must see
// every committed change exactly once, each key in commit order, and the
// table rebuilt from the events must equal the table.
func TestExactlyOnceUnderHALease(t *testing.T) {
	l := startEOSLoad(t, "some padding to make rows less tiny")
	k := startKafka(t, "changes", 4)
	serverID := nextServerID()
	replica := func(n string) *eosReplica {
		admin := freeAddr(t)
		// renew_interval 1s, as in TestHAFrozenLeaderIsFenced: on a loaded
		// runner 500ms let a healthy leader lose its lease.
		return &eosReplica{name: n, admin: admin, cfg: eosConfig{db: l.name, start: l.start, brokers: k.addr, serverID: serverID,
			admin: admin, state: fmt.Sprintf("  checkpoints: {type: mysql, database: %s}\n", l.name),
			top: "ha:\n  lease: mysql\n  renew_interval: 1s\n"}.yaml(t)}
	}
	lead, stand := replica("A"), replica("B")
	lead.start(t)
	eventually(t, 30*time.Second, "A leading", func() bool { return roleOf(lead.admin) == "leader" })
	stand.start(t)
	eventually(t, 30*time.Second, "B standing by", func() bool { return roleOf(stand.admin) == "standby" })
	l.write(t)
	eventually(t, 60*time.Second, "A delivers", func() bool { return someCommitted(t, k.addr, "changes") })
	pause := func() { time.Sleep(time.Duration(300+l.rng.IntN(1200)) * time.Millisecond) }

	// Phase 1: kill -9 of the leader mid-load.
	pause()
	lead.p.kill()
	t.Logf("killed %s: %d committed changes so far", lead.name, len(l.w.committed()))
	lead, stand = stand, lead
	takeOver(t, lead, stand)

	// A clean handover back, so that the first replica leads again.
	pause()
	if code := lead.p.stop(); code != 0 {
		t.Fatalf("%s stopped with exit code %d", lead.name, code)
	}
	lead, stand = stand, lead
	takeOver(t, lead, stand)

	// Phase 2: the leader freezes past its lease: a zombie.
	pause()
	zombie := lead
	signal(t, zombie.p, syscall.SIGSTOP)
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = zombie.p.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	t.Logf("froze %s: %d committed changes so far", zombie.name, len(l.w.committed()))
	lead = stand
	takeOver(t, lead, nil)
	time.Sleep(time.Second) // the new leader commits more while the zombie is frozen
	signal(t, zombie.p, syscall.SIGCONT)
	resumed = true
	eventually(t, 30*time.Second, zombie.name+" standing by or gone", func() bool {
		return !zombie.p.running() || roleOf(zombie.admin) == "standby"
	})
	time.Sleep(2 * time.Second) // a zombie that wrote on would commit here
	events := l.checkExactlyOnce(t, k.addr, func() {
		checkZombieLine(t, zombie)
		for _, r := range []*eosReplica{lead, zombie} {
			if r.p.running() {
				if code := r.p.stop(); code != 0 {
					t.Errorf("%s stopped with exit code %d", r.name, code)
				}
			}
		}
		noPanics(t, map[string]*ferryProc{lead.name: lead.p, zombie.name: zombie.p})
	})
	t.Logf("%d events read_committed through kill -9, a clean handover and a zombie", len(events))
}

// takeOver waits until r leads and has delivered, then restarts the
// replica that stopped leading (when not nil) and waits for it to stand by.
func takeOver(t *testing.T, r, old *eosReplica) {
	t.Helper()
	eventually(t, 30*time.Second, r.name+" leading", func() bool { return roleOf(r.admin) == "leader" })
	eventually(t, 30*time.Second, r.name+" delivering", func() bool { return r.delivered() > 0 })
	if old != nil {
		old.start(t)
		eventually(t, 30*time.Second, old.name+" standing by", func() bool { return roleOf(old.admin) == "standby" })
	}
}

// checkZombieLine: the resumed zombie says in one line why it stopped
// delivering, whichever fence stopped it first.
func checkZombieLine(t *testing.T, zombie *eosReplica) {
	t.Helper()
	log := zombie.p.stderr.String()
	lost := strings.Contains(log, "ha: lost the lease; stopped streaming and standing by")
	fenced := strings.Contains(log, "kafka sink fenced")
	switch {
	case !lost && !fenced:
		t.Errorf("the resumed zombie %s said neither that it lost the lease nor that it was fenced:\n%s", zombie.name, tailLines(log, 30))
	case fenced:
		t.Logf("zombie %s: %s", zombie.name, grepLines(log, "kafka sink fenced"))
	default:
		t.Logf("zombie %s: %s", zombie.name, grepLines(log, "ha: lost the lease"))
	}
}
