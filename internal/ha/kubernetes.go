package ha

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ferry-cdc/ferry/internal/retry"
)

// In-cluster defaults: the pod's service account.
const (
	saDir          = "/var/run/secrets/kubernetes.io/serviceaccount/"
	microTime      = "2006-01-02T15:04:05.000000Z07:00"
	leaseAPIPrefix = "/apis/coordination.k8s.io/v1/namespaces/"
)

// KubernetesOptions configure a Kubernetes Lease. Empty fields come from
// the pod's environment: the namespace, token and CA of its service account
// and the API server from KUBERNETES_SERVICE_HOST/PORT.
type KubernetesOptions struct {
	Name      string // the Lease object's name
	Namespace string
	// Identity names this replica in holderIdentity; default the host name
	// (the pod name).
	Identity string
	// LeaseDuration is how long a Lease not renewed stays taken; default 15s.
	LeaseDuration time.Duration
	// RenewInterval is how often the holder renews and a standby looks;
	// default 2s.
	RenewInterval time.Duration
	APIServer     string // https://host:port
	TokenFile     string // read again for every request: tokens rotate
	CAFile        string
	// Client replaces the HTTP client built from CAFile (tests).
	Client *http.Client
	Logger *slog.Logger
}

// KubernetesLease is a coordination.k8s.io/v1 Lease, spoken to over the
// API server's REST interface with optimistic concurrency: every update is
// a merge patch of the spec fields Ferry owns, carrying the resourceVersion
// it read, and a 409 Conflict means another replica wrote first. As in
// client-go's leader election, a standby judges expiry by its own clock: a
// Lease whose record has not changed for leaseDurationSeconds since this
// replica first saw it is free. The holder renews every RenewInterval and
// gives up leading once it failed to renew for two thirds of the duration,
// before any standby may take the Lease.
type KubernetesLease struct {
	opts   KubernetesOptions
	client *http.Client
	url    string // the Lease object's URL
	log    *slog.Logger
	fence  *Fence // validity: two thirds of the lease duration

	mu     sync.Mutex
	held   bool
	seenRV string    // resourceVersion last observed
	seenAt time.Time // when it was first observed (local clock)
}

var _ Lease = (*KubernetesLease)(nil)

// leaseObject is the part of a Lease Ferry reads and writes.
type leaseObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name            string `json:"name"`
		Namespace       string `json:"namespace"`
		ResourceVersion string `json:"resourceVersion,omitempty"`
	} `json:"metadata"`
	Spec leaseSpec `json:"spec"`
}

type leaseSpec struct {
	HolderIdentity       string `json:"holderIdentity,omitempty"`
	LeaseDurationSeconds int    `json:"leaseDurationSeconds,omitempty"`
	AcquireTime          string `json:"acquireTime,omitempty"`
	RenewTime            string `json:"renewTime,omitempty"`
	LeaseTransitions     int    `json:"leaseTransitions,omitempty"`
}

// errConflict is a lost optimistic-concurrency race (HTTP 409).
var errConflict = errors.New("lease was modified by another replica (409 Conflict)")

// NewKubernetes returns a lease that has not contacted the API server yet.
func NewKubernetes(opts KubernetesOptions) (*KubernetesLease, error) {
	if err := kubeDefaults(&opts); err != nil {
		return nil, err
	}
	// A standby takes the Lease only after its record went unchanged for
	// the whole duration on the standby's own clock, from a renewal it saw
	// after the holder sent it; the holder stops delivering two thirds in.
	// So no takeover wait is needed: the margin is a third of the duration.
	l := &KubernetesLease{opts: opts, log: opts.Logger, client: opts.Client, fence: newFence(opts.LeaseDuration * 2 / 3)}
	l.url = strings.TrimRight(opts.APIServer, "/") + leaseAPIPrefix + opts.Namespace + "/leases/" + opts.Name
	if l.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if opts.CAFile != "" {
			pem, err := os.ReadFile(opts.CAFile)
			if err != nil {
				return nil, fmt.Errorf("kubernetes lease: read CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kubernetes lease: no certificate in %s", opts.CAFile)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		l.client = &http.Client{Transport: tr, Timeout: opts.RenewInterval}
	}
	return l, nil
}

func kubeDefaults(o *KubernetesOptions) error {
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewInterval == 0 {
		o.RenewInterval = 2 * time.Second
	}
	if o.LeaseDuration < 2*o.RenewInterval {
		return errors.New("kubernetes lease: lease_duration must be at least twice the renew interval")
	}
	if o.Namespace == "" {
		b, err := os.ReadFile(saDir + "namespace")
		if err != nil {
			return fmt.Errorf("kubernetes lease: no namespace configured and not in a pod: %w", err)
		}
		o.Namespace = strings.TrimSpace(string(b))
	}
	if o.APIServer == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return errors.New("kubernetes lease: no api_server configured and KUBERNETES_SERVICE_HOST/PORT are not set")
		}
		o.APIServer = "https://" + net.JoinHostPort(host, port)
	}
	if o.TokenFile == "" && o.Client == nil {
		o.TokenFile = saDir + "token"
	}
	if o.CAFile == "" && o.Client == nil && strings.HasPrefix(o.APIServer, "https://") {
		o.CAFile = saDir + "ca.crt"
	}
	if o.Identity == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("kubernetes lease: identity: %w", err)
		}
		o.Identity = h
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Name implements Lease.
func (l *KubernetesLease) Name() string {
	return fmt.Sprintf("kubernetes lease %s/%s as %q", l.opts.Namespace, l.opts.Name, l.opts.Identity)
}

// Acquire implements Lease.
func (l *KubernetesLease) Acquire(ctx context.Context) error {
	announced := false
	// A standby looks every renew interval, jittered so that replicas
	// started together do not write the Lease at the same instant.
	b := retry.New(retry.Every(l.opts.RenewInterval))
	for {
		ok, holder, err := l.try(ctx)
		switch {
		case ok:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !errors.Is(err, errConflict):
			l.log.Warn("ha: cannot reach the lease; retrying", "lease", l.Name(), "error", err)
		case !announced && holder != "":
			announced = true
			l.log.Info("ha: standing by; another replica holds the lease", "lease", l.Name(), "holder", holder)
		}
		_ = b.Wait(ctx, err)
	}
}

// try reads the Lease and takes or renews it when it may; it reports
// whether this replica holds it now, and who does otherwise.
func (l *KubernetesLease) try(ctx context.Context) (bool, string, error) {
	cur, err := l.get(ctx)
	if err != nil {
		return false, "", err
	}
	now := time.Now()
	if cur == nil {
		obj := &leaseObject{APIVersion: "coordination.k8s.io/v1", Kind: "Lease"}
		obj.Metadata.Name, obj.Metadata.Namespace = l.opts.Name, l.opts.Namespace
		obj.Spec = l.spec(now, now, 0)
		body, err := json.Marshal(obj)
		if err != nil {
			return false, "", err
		}
		return l.write(ctx, http.MethodPost, strings.TrimSuffix(l.url, "/"+l.opts.Name), body, now)
	}
	l.mu.Lock()
	if cur.Metadata.ResourceVersion != l.seenRV {
		l.seenRV, l.seenAt = cur.Metadata.ResourceVersion, now
	}
	expired := now.After(l.seenAt.Add(time.Duration(cur.Spec.LeaseDurationSeconds) * time.Second))
	l.mu.Unlock()
	holder := cur.Spec.HolderIdentity
	var spec leaseSpec
	switch {
	case holder == l.opts.Identity:
		acquired, _ := time.Parse(microTime, cur.Spec.AcquireTime)
		spec = l.spec(acquired, now, cur.Spec.LeaseTransitions)
	case holder == "" || expired:
		spec = l.spec(now, now, cur.Spec.LeaseTransitions+1)
	default:
		return false, holder, nil
	}
	body, err := specPatch(cur.Metadata.ResourceVersion, map[string]any{"holderIdentity": spec.HolderIdentity,
		"leaseDurationSeconds": spec.LeaseDurationSeconds, "acquireTime": spec.AcquireTime,
		"renewTime": spec.RenewTime, "leaseTransitions": spec.LeaseTransitions})
	if err != nil {
		return false, "", err
	}
	return l.write(ctx, http.MethodPatch, l.url, body, now)
}

// specPatch is a JSON merge patch of the Lease's spec fields: the rest of
// the object (labels, annotations, ownerReferences, spec fields Ferry does
// not know) belongs to whoever set it, and a PUT of the part Ferry reads
// would wipe it. The resourceVersion read makes the patch conditional: the
// server refuses it with 409 when another replica wrote in between, as it
// would the PUT.
func specPatch(resourceVersion string, spec map[string]any) ([]byte, error) {
	return json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": resourceVersion}, "spec": spec})
}

func (l *KubernetesLease) spec(acquired, renewed time.Time, transitions int) leaseSpec {
	return leaseSpec{HolderIdentity: l.opts.Identity, LeaseDurationSeconds: int(l.opts.LeaseDuration / time.Second),
		AcquireTime: acquired.UTC().Format(microTime), RenewTime: renewed.UTC().Format(microTime), LeaseTransitions: transitions}
}

// write creates (POST) or patches (PATCH) the Lease as its holder; success
// makes this replica the holder as of at.
func (l *KubernetesLease) write(ctx context.Context, method, url string, body []byte, at time.Time) (bool, string, error) {
	var out leaseObject
	if err := l.do(ctx, method, url, body, &out); err != nil {
		return false, "", err
	}
	l.mu.Lock()
	wasHeld := l.held
	l.held = true
	l.seenRV, l.seenAt = out.Metadata.ResourceVersion, at
	l.mu.Unlock()
	if wasHeld {
		l.fence.renewed(at)
	} else {
		l.fence.begin(at, 0)
	}
	return true, l.opts.Identity, nil
}

// get returns the Lease, or nil when it does not exist.
func (l *KubernetesLease) get(ctx context.Context) (*leaseObject, error) {
	var obj leaseObject
	err := l.do(ctx, http.MethodGet, l.url, nil, &obj)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &obj, nil
}

var errNotFound = errors.New("lease not found")

func (l *KubernetesLease) do(ctx context.Context, method, url string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	switch {
	case method == http.MethodPatch:
		req.Header.Set("Content-Type", "application/merge-patch+json")
	case body != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	if l.opts.TokenFile != "" {
		tok, err := os.ReadFile(l.opts.TokenFile)
		if err != nil {
			return fmt.Errorf("read service account token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s lease: %w", method, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errNotFound
	case resp.StatusCode == http.StatusConflict:
		return errConflict
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("%s lease: HTTP %d: %s", method, resp.StatusCode, bytes.TrimSpace(data[:min(len(data), 300)]))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s lease: decode answer: %w", method, err)
	}
	return nil
}

// Keep implements Lease: it renews every renew interval; once renewals
// failed for two thirds of the lease duration, or another replica holds
// the Lease, leading must stop.
func (l *KubernetesLease) Keep(ctx context.Context) error {
	return checkEvery(ctx, l.opts.RenewInterval, func(rctx context.Context) error {
		ok, holder, err := l.try(rctx)
		switch {
		case ok || ctx.Err() != nil:
			return nil // renewed, or stopping: not a loss
		case err == nil:
			return l.lost(fmt.Errorf("%w: %s: now held by %q", ErrLost, l.Name(), holder))
		}
		if verr := l.Valid(); verr != nil {
			return l.lost(fmt.Errorf("%w: %w (last error: %w)", ErrLost, verr, err))
		}
		l.log.Warn("ha: lease renewal failed; retrying", "lease", l.Name(), "error", err)
		return nil
	})
}

// Valid reports whether this replica holds the Lease and renewed it within
// the renew deadline (two thirds of the duration); checkpoint writes check
// it first.
func (l *KubernetesLease) Valid() error {
	if err := l.fence.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotHeld, err)
	}
	return nil
}

// Fence implements Lease.
func (l *KubernetesLease) Fence() *Fence { return l.fence }

// lost ends the term with err and returns it.
func (l *KubernetesLease) lost(err error) error {
	l.mu.Lock()
	l.held = false
	l.mu.Unlock()
	l.fence.end(err)
	return err
}

// Release implements Lease: it clears holderIdentity, so a standby takes
// over at its next look instead of after the duration.
func (l *KubernetesLease) Release(ctx context.Context) error {
	l.fence.end(errReleased)
	l.mu.Lock()
	held := l.held
	l.held = false
	l.mu.Unlock()
	if !held {
		return nil
	}
	cur, err := l.get(ctx)
	if err != nil || cur == nil || cur.Spec.HolderIdentity != l.opts.Identity {
		return err
	}
	// null deletes holderIdentity; the one-second duration lets a standby
	// that missed the change still take over almost at once.
	body, err := specPatch(cur.Metadata.ResourceVersion, map[string]any{"holderIdentity": nil, "leaseDurationSeconds": 1})
	if err != nil {
		return err
	}
	var out leaseObject
	if err := l.do(ctx, http.MethodPatch, l.url, body, &out); err != nil {
		return fmt.Errorf("release %s: %w", l.Name(), err)
	}
	return nil
}

// Close implements Lease.
func (l *KubernetesLease) Close() error {
	l.client.CloseIdleConnections()
	return nil
}
