package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"strings"
)

// Who may call what. Every request passes through access before the mux,
// and an endpoint is open only if it is listed here: one added later (dead
// letters, say) is a work endpoint, guarded, without anyone remembering to
// guard it.
//
//   - probe endpoints answer everyone: a kubelet or load balancer has no
//     token, and they tell nothing but "alive" and "ready".
//   - observe endpoints (counters, positions, states; no row data) answer
//     everyone without a token, and need it when one is set; /metrics
//     stays open with metrics_public.
//   - everything else is work (starting backfills and replays, reading dead
//     letters): with a token it needs the token; without one it answers
//     only on loopback, 403 elsewhere.
//
// With mutual TLS a verified client certificate is needed besides (and,
// without a token, in place of) the token, for all but the probes.
var (
	probePaths   = map[string]bool{"/healthz": true, "/readyz": true}
	observePaths = map[string]bool{"/status": true, "/metrics": true}
)

// access is the admin listener's authentication and authorization.
type access struct {
	tokenHash     [sha256.Size]byte
	hasToken      bool
	metricsPublic bool
	// clientCerts: the listener asks for client certificates (mutual TLS),
	// and every endpoint but the probes needs a verified one.
	clientCerts bool
	log         *slog.Logger
}

func newAccess(token string, metricsPublic, clientCerts bool, log *slog.Logger) *access {
	a := &access{hasToken: token != "", metricsPublic: metricsPublic, clientCerts: clientCerts, log: log}
	if a.hasToken {
		a.tokenHash = sha256.Sum256([]byte(token))
	}
	return a
}

func (a *access) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		switch {
		case probePaths[path], path == "/metrics" && a.metricsPublic:
		case a.clientCerts && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0):
			a.deny(w, r, http.StatusUnauthorized, "no client certificate")
			return
		case a.hasToken && !a.tokenOK(r):
			a.deny(w, r, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		case a.hasToken, a.clientCerts, observePaths[path]:
			// authenticated (token, client certificate), or no secret asked
		case !fromLoopback(r):
			a.deny(w, r, http.StatusForbidden, "work endpoint from another host without admin.token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenOK compares the bearer token in constant time; hashing first makes
// the comparison's length independent of the token's too.
func (a *access) tokenOK(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) == 1
}

// deny answers without detail (the reason goes to the log, not the
// caller, who may be probing).
func (a *access) deny(w http.ResponseWriter, r *http.Request, status int, reason string) {
	a.log.Warn("admin request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "reason", reason)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
	}
	http.Error(w, strings.ToLower(http.StatusText(status)), status)
}

// fromLoopback reports whether the request's peer is this host. A proxy
// on the same host makes every request look local: configure a token then.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
