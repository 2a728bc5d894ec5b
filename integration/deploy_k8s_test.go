package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// k8sObject is one Kubernetes object of a manifest file.
type k8sObject struct {
	file string
	doc  map[string]any
}

func (o k8sObject) kind() string { return str(o.doc, "kind") }
func (o k8sObject) name() string { return str(o.doc, "metadata", "name") }

// k8sSet is what one kustomization directory applies, by kind/name.
type k8sSet map[string]k8sObject

func (s k8sSet) get(kind, name string) (k8sObject, bool) {
	o, ok := s[kind+"/"+name]
	return o, ok
}

func (s k8sSet) ofKind(kinds ...string) []k8sObject {
	var out []k8sObject
	for _, o := range s {
		if slices.Contains(kinds, o.kind()) {
			out = append(out, o)
		}
	}
	return out
}

// loadKustomization collects the objects a kustomization directory
// applies. The manifests use only resources and labels (no patches or
// generators), which this loader checks, so the result is what
// `kubectl apply -k` creates, less the labels.
func loadKustomization(t *testing.T, dir string, set k8sSet) {
	t.Helper()
	docs := yamlDocs(t, filepath.Join(dir, "kustomization.yaml"))
	if len(docs) != 1 {
		t.Fatalf("%s/kustomization.yaml: %d documents", dir, len(docs))
	}
	k := docs[0].(map[string]any)
	for key := range k {
		if !slices.Contains([]string{"apiVersion", "kind", "resources", "labels"}, key) {
			t.Fatalf("%s/kustomization.yaml: %s is not understood by this test's loader; extend it", dir, key)
		}
	}
	var listed []string
	for _, r := range list(k, "resources") {
		p := filepath.Join(dir, r.(string))
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s/kustomization.yaml: resource %s: %v", dir, r, err)
		}
		if fi.IsDir() {
			loadKustomization(t, p, set)
			continue
		}
		listed = append(listed, filepath.Base(p))
		for i, d := range yamlDocs(t, p) {
			o := k8sObject{file: p, doc: d.(map[string]any)}
			if str(o.doc, "apiVersion") == "" || o.kind() == "" || o.name() == "" {
				t.Errorf("%s: document %d lacks apiVersion, kind or metadata.name", p, i+1)
				continue
			}
			if prev, dup := set[o.kind()+"/"+o.name()]; dup {
				t.Errorf("%s %s defined in %s and %s", o.kind(), o.name(), prev.file, p)
			}
			set[o.kind()+"/"+o.name()] = o
		}
	}
	// A manifest next to a kustomization but missing from its resources is
	// never applied: almost always a mistake.
	yamls, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, y := range yamls {
		if b := filepath.Base(y); b != "kustomization.yaml" && !slices.Contains(listed, b) {
			t.Errorf("%s is not listed in %s/kustomization.yaml", y, dir)
		}
	}
}

// TestKubernetesManifests checks each deployable variant: the Ferry
// sidecar's probes, resources, security and mounts; that every reference
// (Secret and ConfigMap keys, volumes, claims, Services, RBAC) resolves to
// an object the variant applies; and that the config it mounts validates.
func TestKubernetesManifests(t *testing.T) {
	for variant, native := range map[string]bool{"sidecar": false, "native-sidecar": true, "ha": false} {
		t.Run(variant, func(t *testing.T) {
			set := k8sSet{}
			loadKustomization(t, filepath.Join("../deploy/kubernetes", variant), set)
			workloads := set.ofKind("Deployment", "StatefulSet")
			if len(workloads) != 1 {
				t.Fatalf("want one Deployment or StatefulSet, got %d", len(workloads))
			}
			w := workloads[0]
			pod := dig(w.doc, "spec", "template", "spec")
			checkPodReferences(t, set, w)
			ferry, init := findContainer(pod, "ferry")
			if ferry == nil {
				t.Fatal("no container named ferry")
			}
			if init != native {
				t.Errorf("ferry is an init container: %v, want %v", init, native)
			}
			if init && str(ferry, "restartPolicy") != "Always" {
				t.Error("ferry as an init container needs restartPolicy: Always (a native sidecar), or the pod never starts")
			}
			checkFerrySecurity(t, pod, ferry)
			checkFerryState(t, set, w, ferry)
			checkFerryConfig(t, set, pod, ferry)
			checkServices(t, set, w, ferry)
			checkRBAC(t, set, pod)
		})
	}
}

// findContainer returns the named container and whether it is an init container.
func findContainer(pod any, name string) (map[string]any, bool) {
	for _, field := range []string{"containers", "initContainers"} {
		for _, c := range list(pod, field) {
			if str(c, "name") == name {
				return c.(map[string]any), field == "initContainers"
			}
		}
	}
	return nil, false
}

func allContainers(pod any) []any {
	return append(list(pod, "containers"), list(pod, "initContainers")...)
}

// checkPodReferences resolves every volume, claim, Secret and ConfigMap
// the pod names.
func checkPodReferences(t *testing.T, set k8sSet, w k8sObject) {
	t.Helper()
	pod := dig(w.doc, "spec", "template", "spec")
	labels := dig(w.doc, "spec", "template", "metadata", "labels")
	if !selects(dig(w.doc, "spec", "selector", "matchLabels"), labels) {
		t.Errorf("%s %s: selector does not match its pod template's labels", w.kind(), w.name())
	}
	volumes := map[string]any{}
	for _, v := range list(pod, "volumes") {
		volumes[str(v, "name")] = v
		switch {
		case dig(v, "configMap") != nil:
			requireKeys(t, set, "ConfigMap", str(v, "configMap", "name"), itemKeys(v, "configMap"))
		case dig(v, "secret") != nil:
			requireKeys(t, set, "Secret", str(v, "secret", "secretName"), itemKeys(v, "secret"))
		case dig(v, "persistentVolumeClaim") != nil:
			requireKeys(t, set, "PersistentVolumeClaim", str(v, "persistentVolumeClaim", "claimName"), nil)
		}
	}
	for _, c := range list(w.doc, "spec", "volumeClaimTemplates") {
		volumes[str(c, "metadata", "name")] = c
	}
	for _, c := range allContainers(pod) {
		for _, m := range list(c, "volumeMounts") {
			if volumes[str(m, "name")] == nil {
				t.Errorf("container %s mounts volume %s, which is not defined", str(c, "name"), str(m, "name"))
			}
		}
		for _, e := range list(c, "env") {
			if r := dig(e, "valueFrom", "secretKeyRef"); r != nil {
				requireKeys(t, set, "Secret", str(r, "name"), []string{str(r, "key")})
			}
			if r := dig(e, "valueFrom", "configMapKeyRef"); r != nil {
				requireKeys(t, set, "ConfigMap", str(r, "name"), []string{str(r, "key")})
			}
		}
		for _, e := range list(c, "envFrom") {
			if n := str(e, "secretRef", "name"); n != "" {
				requireKeys(t, set, "Secret", n, nil)
			}
			if n := str(e, "configMapRef", "name"); n != "" {
				requireKeys(t, set, "ConfigMap", n, nil)
			}
		}
	}
	if sa := str(pod, "serviceAccountName"); sa != "" && sa != "default" {
		requireKeys(t, set, "ServiceAccount", sa, nil)
	}
	if sn := str(w.doc, "spec", "serviceName"); w.kind() == "StatefulSet" {
		requireKeys(t, set, "Service", sn, nil)
	}
}

func itemKeys(v any, field string) []string {
	var out []string
	for _, it := range list(v, field, "items") {
		out = append(out, str(it, "key"))
	}
	return out
}

// requireKeys fails unless kind/name is in the set with every key in its
// data (or a Secret's stringData).
func requireKeys(t *testing.T, set k8sSet, kind, name string, keys []string) {
	t.Helper()
	o, ok := set.get(kind, name)
	if !ok {
		t.Errorf("%s %q is referenced but not defined", kind, name)
		return
	}
	for _, k := range keys {
		if dig(o.doc, "data", k) == nil && dig(o.doc, "stringData", k) == nil {
			t.Errorf("%s %s has no key %q", kind, name, k)
		}
	}
}

// selects reports whether every label of sel is in labels.
func selects(sel, labels any) bool {
	s, _ := sel.(map[string]any)
	l, _ := labels.(map[string]any)
	if len(s) == 0 {
		return false
	}
	for k, v := range s {
		if l[k] != v {
			return false
		}
	}
	return true
}

func checkFerrySecurity(t *testing.T, pod any, c map[string]any) {
	t.Helper()
	sc := dig(c, "securityContext")
	either := func(keys ...any) any {
		if v := dig(sc, keys...); v != nil {
			return v
		}
		return dig(pod, append([]any{"securityContext"}, keys...)...)
	}
	if either("runAsNonRoot") != true {
		t.Error("ferry: securityContext.runAsNonRoot is not true")
	}
	if dig(sc, "readOnlyRootFilesystem") != true || dig(sc, "allowPrivilegeEscalation") != false {
		t.Error("ferry: want readOnlyRootFilesystem: true and allowPrivilegeEscalation: false")
	}
	if !slices.Contains(list(sc, "capabilities", "drop"), any("ALL")) {
		t.Error("ferry: capabilities do not drop ALL")
	}
	if either("seccompProfile", "type") != "RuntimeDefault" {
		t.Error("ferry: seccompProfile is not RuntimeDefault")
	}
	for _, r := range []string{"requests.cpu", "requests.memory", "limits.memory"} {
		a, b, _ := strings.Cut(r, ".")
		if dig(c, "resources", a, b) == nil {
			t.Errorf("ferry: no resources.%s", r)
		}
	}
}

// checkFerryState checks /var/lib/ferry is on a volume that outlives the
// pod, and that only one writer can hold it.
func checkFerryState(t *testing.T, set k8sSet, w k8sObject, c map[string]any) {
	t.Helper()
	vol := mountVolume(c, "/var/lib/ferry")
	if vol == "" {
		t.Fatal("ferry: nothing is mounted at /var/lib/ferry")
	}
	if w.kind() == "StatefulSet" {
		for _, tpl := range list(w.doc, "spec", "volumeClaimTemplates") {
			if str(tpl, "metadata", "name") == vol {
				return
			}
		}
		t.Errorf("StatefulSet: /var/lib/ferry's volume %s is not a volumeClaimTemplate", vol)
		return
	}
	for _, v := range list(w.doc, "spec", "template", "spec", "volumes") {
		if str(v, "name") == vol && dig(v, "persistentVolumeClaim", "claimName") == nil {
			t.Errorf("/var/lib/ferry's volume %s is not a PersistentVolumeClaim: checkpoints would be lost with the pod", vol)
		}
	}
	// The state store is locked by one process: a second pod on the same
	// claim (a rolling update, a second replica) would wait forever.
	if r, _ := dig(w.doc, "spec", "replicas").(int); r != 1 || str(w.doc, "spec", "strategy", "type") != "Recreate" {
		t.Errorf("Deployment with a state PVC: want replicas 1 and strategy Recreate, got %v and %q",
			dig(w.doc, "spec", "replicas"), str(w.doc, "spec", "strategy", "type"))
	}
}

func mountVolume(c any, path string) string {
	for _, m := range list(c, "volumeMounts") {
		if str(m, "mountPath") == path {
			return str(m, "name")
		}
	}
	return ""
}

// mountedFile returns the content of a file the container sees at path,
// from the ConfigMap mounted over its directory.
func mountedFile(t *testing.T, set k8sSet, pod, c any, path string) string {
	t.Helper()
	dir, file := filepath.Dir(path), filepath.Base(path)
	vol := mountVolume(c, dir)
	for _, v := range list(pod, "volumes") {
		if str(v, "name") != vol || str(v, "configMap", "name") == "" {
			continue
		}
		if cm, ok := set.get("ConfigMap", str(v, "configMap", "name")); ok {
			if s := str(cm.doc, "data", file); s != "" {
				return s
			}
		}
	}
	t.Fatalf("%s is not a key of a ConfigMap mounted at %s", path, dir)
	return ""
}

var fileRef = regexp.MustCompile(`\$\{file:(/[^}]+)\}`)

// secretFiles checks every ${file:/PATH} of body is a key of a Secret
// mounted at PATH's directory, writes a placeholder for it under dir and
// returns body reading the placeholders.
func secretFiles(t *testing.T, set k8sSet, pod, c any, body, dir string) string {
	t.Helper()
	return fileRef.ReplaceAllStringFunc(body, func(ref string) string {
		path := fileRef.FindStringSubmatch(ref)[1]
		vol := mountVolume(c, filepath.Dir(path))
		for _, v := range list(pod, "volumes") {
			if str(v, "name") != vol || str(v, "secret", "secretName") == "" {
				continue
			}
			key := filepath.Base(path)
			for _, item := range list(v, "secret", "items") {
				if str(item, "path") == key {
					key = str(item, "key")
				}
			}
			sec, ok := set.get("Secret", str(v, "secret", "secretName"))
			if !ok || (str(sec.doc, "stringData", key) == "" && str(sec.doc, "data", key) == "") {
				t.Errorf("%s: the Secret %s has no key %s", path, str(v, "secret", "secretName"), key)
			}
			local := filepath.Join(dir, "secret-"+key)
			if err := os.WriteFile(local, []byte("dummy-"+key), 0o600); err != nil {
				t.Fatal(err)
			}
			return "${file:" + local + "}"
		}
		t.Errorf("%s is read with ${file:} but no Secret is mounted at %s", path, filepath.Dir(path))
		return ref
	})
}

func configArgs(args []any) []string {
	var out []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-c" {
			out = append(out, args[i+1].(string))
		}
	}
	return out
}

// checkFerryConfig checks the probes and the config files the container
// reads: mounted, given every variable they need, consistent with the
// pod, and accepted by `ferry validate`.
func checkFerryConfig(t *testing.T, set k8sSet, pod any, c map[string]any) {
	t.Helper()
	if mountVolume(c, "/etc/ferry") == "" {
		t.Error("ferry: no config mounted at /etc/ferry")
	}
	files := configArgs(list(c, "args"))
	if len(files) == 0 || files[0] != "/etc/ferry/ferry.yaml" {
		t.Fatalf("ferry args %v: want run -c /etc/ferry/ferry.yaml", list(c, "args"))
	}
	env := map[string]string{}
	for _, e := range list(c, "env") {
		env[str(e, "name")] = str(e, "value")
		if env[str(e, "name")] == "" {
			env[str(e, "name")] = "dummy-" + strings.ToLower(str(e, "name"))
		}
	}
	dir := t.TempDir()
	var written []string
	for _, f := range files {
		body := mountedFile(t, set, pod, c, f)
		required, _ := requiredEnv(body)
		for _, k := range required {
			if _, ok := env[k]; !ok {
				t.Errorf("%s needs ${%s}, which the ferry container's env does not set", f, k)
			}
		}
		body = secretFiles(t, set, pod, c, body, dir)
		p := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		written = append(written, p)
	}
	main := yamlDocs(t, written[0])[0]
	if str(main, "state", "dir") != "/var/lib/ferry" {
		t.Errorf("ferry.yaml: state.dir %q, want /var/lib/ferry (the volume)", str(main, "state", "dir"))
	}
	adminPort := containerPort(c, "admin")
	if l := str(main, "admin", "listen"); l != fmt.Sprintf("0.0.0.0:%d", adminPort) {
		t.Errorf("ferry.yaml: admin.listen %q, want 0.0.0.0:%d so probes and Prometheus reach it", l, adminPort)
	}
	if !strings.HasPrefix(str(main, "admin", "token"), "${file:") {
		t.Errorf("ferry.yaml: admin.token %q, want ${file:...} from a mounted Secret (the pod network reaches the admin port)", str(main, "admin", "token"))
	}
	// The ha overlay's extra file holds keys still settling; the main
	// config alone must validate in every variant.
	ferryValidate(t, env, written[0])

	for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
		p := dig(c, probe)
		switch {
		case p == nil && probe == "startupProbe":
		case p == nil:
			t.Errorf("ferry: no %s", probe)
		case dig(p, "exec") != nil:
			cmd := list(p, "exec", "command")
			if len(cmd) < 2 || cmd[0] != "/usr/local/bin/ferry" || cmd[1] != "health" {
				t.Errorf("ferry: %s runs %v, want /usr/local/bin/ferry health", probe, cmd)
			}
			for _, f := range configArgs(cmd) {
				mountedFile(t, set, pod, c, f)
			}
		case dig(p, "httpGet") != nil:
			port, path := dig(p, "httpGet", "port"), str(p, "httpGet", "path")
			if (port != "admin" && port != adminPort) || (path != "/healthz" && path != "/readyz") {
				t.Errorf("ferry: %s gets %v%s, want /healthz or /readyz on the admin port", probe, port, path)
			}
		default:
			t.Errorf("ferry: %s is neither exec (ferry health) nor httpGet", probe)
		}
	}
}

func containerPort(c any, name string) int {
	for _, p := range list(c, "ports") {
		if str(p, "name") == name {
			n, _ := dig(p, "containerPort").(int)
			return n
		}
	}
	return 0
}

// checkServices checks each Service selects the pod and targets a port it
// has; the admin Service carries the Prometheus scrape annotations.
func checkServices(t *testing.T, set k8sSet, w k8sObject, ferry map[string]any) {
	t.Helper()
	pod := dig(w.doc, "spec", "template", "spec")
	scraped := false
	for _, s := range set.ofKind("Service") {
		if !selects(dig(s.doc, "spec", "selector"), dig(w.doc, "spec", "template", "metadata", "labels")) {
			t.Errorf("Service %s selects no pod of %s %s", s.name(), w.kind(), w.name())
		}
		for _, p := range list(s.doc, "spec", "ports") {
			target := dig(p, "targetPort")
			found := false
			for _, c := range allContainers(pod) {
				for _, cp := range list(c, "ports") {
					found = found || target == str(cp, "name") || target == dig(cp, "containerPort")
				}
			}
			if !found {
				t.Errorf("Service %s: targetPort %v is no container port of the pod", s.name(), target)
			}
			if target == "admin" {
				a := dig(s.doc, "metadata", "annotations")
				scraped = str(a, "prometheus.io/scrape") == "true" &&
					str(a, "prometheus.io/port") == fmt.Sprint(containerPort(ferry, "admin")) &&
					str(a, "prometheus.io/path") == "/metrics"
			}
		}
	}
	if !scraped {
		t.Error("no Service on the admin port with prometheus.io/scrape, port and path annotations")
	}
}

// checkRBAC checks RoleBindings resolve and that a pod with a service
// account may hold the Lease its HA config names.
func checkRBAC(t *testing.T, set k8sSet, pod any) {
	t.Helper()
	for _, rb := range set.ofKind("RoleBinding") {
		requireKeys(t, set, str(rb.doc, "roleRef", "kind"), str(rb.doc, "roleRef", "name"), nil)
		for _, s := range list(rb.doc, "subjects") {
			requireKeys(t, set, str(s, "kind"), str(s, "name"), nil)
		}
	}
	sa := str(pod, "serviceAccountName")
	if sa == "" {
		return
	}
	ha, ok := set.get("ConfigMap", "ferry-ha-config")
	if !ok {
		t.Fatalf("pod runs as %s but there is no ferry-ha-config", sa)
	}
	lease := str(yamlString(t, str(ha.doc, "data", "ha.yaml")), "ha", "name")
	verbs := map[string]bool{}
	for _, rb := range set.ofKind("RoleBinding") {
		if !slices.ContainsFunc(list(rb.doc, "subjects"), func(s any) bool { return str(s, "name") == sa }) {
			continue
		}
		role, _ := set.get("Role", str(rb.doc, "roleRef", "name"))
		for _, r := range list(role.doc, "rules") {
			names := list(r, "resourceNames")
			if !slices.Contains(list(r, "apiGroups"), any("coordination.k8s.io")) || !slices.Contains(list(r, "resources"), any("leases")) {
				continue
			}
			for _, v := range list(r, "verbs") {
				if len(names) == 0 || slices.Contains(names, any(lease)) {
					verbs[v.(string)] = true
				}
			}
		}
	}
	for _, v := range []string{"get", "create", "patch"} {
		if !verbs[v] {
			t.Errorf("service account %s may not %s Lease %q", sa, v, lease)
		}
	}
}

func yamlString(t *testing.T, s string) any {
	t.Helper()
	p := filepath.Join(t.TempDir(), "doc.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return yamlDocs(t, p)[0]
}
