package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// agreedMetrics are the metric families Ferry exposes (the names operators'
// dashboards and alerts are built on), with their Prometheus types.
var agreedMetrics = map[string]string{
	"ferry_build_info":                    "gauge",
	"ferry_source_events_read_total":      "counter",
	"ferry_source_changes_dropped_total":  "counter",
	"ferry_source_rule_failures_total":    "counter",
	"ferry_source_connected":              "gauge",
	"ferry_source_lag_seconds":            "gauge",
	"ferry_source_binlog_file_number":     "gauge",
	"ferry_source_binlog_position":        "gauge",
	"ferry_source_checkpoint_age_seconds": "gauge",
	"ferry_sink_events_delivered_total":   "counter",
	"ferry_sink_retries_total":            "counter",
	"ferry_sink_dead_letters_total":       "counter",
	"ferry_sink_delivery_latency_seconds": "histogram",
	"ferry_sink_reachable":                "gauge",
	"ferry_sink_buffer_events":            "gauge",
	"ferry_pipeline_in_flight_events":     "gauge",
	"ferry_webhook_requests_total":        "counter",
	"ferry_webhook_buffer_records":        "gauge",
	"ferry_ha_leader":                     "gauge",
}

var metricName = regexp.MustCompile(`\bferry_[a-z0-9_]+`)

// family maps a series name to its metric family (a histogram's _bucket,
// _sum and _count to the histogram).
func family(series string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok && agreedMetrics[base] == "histogram" {
			return base
		}
	}
	return series
}

// dashboardMetrics returns every metric family the dashboard queries,
// checking the dashboard's structure on the way.
func dashboardMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../deploy/grafana/ferry-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("ferry-dashboard.json: %v", err)
	}
	if v, _ := d["schemaVersion"].(float64); v < 36 {
		t.Errorf("schemaVersion %v, want 36 or later", d["schemaVersion"])
	}
	if str(d, "__inputs", 0, "name") != "DS_PROMETHEUS" || str(d, "__inputs", 0, "pluginId") != "prometheus" {
		t.Error("__inputs: want the DS_PROMETHEUS datasource input, so the dashboard imports into any Grafana")
	}
	used := map[string]bool{}
	collect := func(where, expr string) {
		for _, m := range metricName.FindAllString(expr, -1) {
			f := family(m)
			if _, ok := agreedMetrics[f]; !ok {
				t.Errorf("%s uses %s, which is not an agreed metric name", where, m)
			}
			used[f] = true
		}
	}
	var vars []string
	for _, v := range list(d, "templating", "list") {
		vars = append(vars, str(v, "name"))
		collect("variable "+str(v, "name"), str(v, "definition"))
		if str(v, "datasource", "uid") != "${DS_PROMETHEUS}" {
			t.Errorf("variable %s does not use ${DS_PROMETHEUS}", str(v, "name"))
		}
	}
	for _, want := range []string{"source", "sink"} {
		if !slices.Contains(vars, want) {
			t.Errorf("no templating variable %s", want)
		}
	}
	ids := map[float64]bool{}
	for _, p := range list(d, "panels") {
		title := "panel " + strconv.Quote(str(p, "title"))
		id, _ := dig(p, "id").(float64)
		if ids[id] {
			t.Errorf("%s: duplicate id %v", title, id)
		}
		ids[id] = true
		if str(p, "type") == "row" {
			continue
		}
		if str(p, "datasource", "uid") != "${DS_PROMETHEUS}" || len(list(p, "targets")) == 0 {
			t.Errorf("%s: want targets on datasource ${DS_PROMETHEUS}", title)
		}
		for _, tg := range list(p, "targets") {
			expr := str(tg, "expr")
			collect(title, expr)
			if strings.Contains(expr, "histogram_quantile") && (!strings.Contains(expr, "_bucket") || !strings.Contains(expr, "le)")) {
				t.Errorf("%s: histogram_quantile must aggregate _bucket rates by le: %s", title, expr)
			}
		}
	}
	return used
}

// TestGrafanaDashboard checks the dashboard's structure and that it shows
// every agreed metric.
func TestGrafanaDashboard(t *testing.T) {
	used := dashboardMetrics(t)
	for m := range agreedMetrics {
		if !used[m] {
			t.Errorf("the dashboard shows no %s", m)
		}
	}
}

// TestDashboardMetricsExposed runs ferry with every kind of metric source
// (a MySQL source with HA, a webhook source, a sink), sends it changes and
// requests, and checks every family the dashboard queries is on /metrics
// with its agreed type. The MySQL user has only the grants the compose
// demo's initdb gives (plus what HA checkpoints need), so those are proven
// enough too. `ferry health`, the image's HEALTHCHECK, must answer 0.
func TestDashboardMetricsExposed(t *testing.T) {
	db, conn := newDB(t, shared)
	exec1(t, conn, "CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(10,2))")
	grants := demoGrants(t, db)
	grants = append(grants, "INSERT, UPDATE, DELETE, CREATE ON `"+db+"`.*")
	if err := shared.CreateUser(context.Background(), "ferry_deploy", "s3cret-deploy", grants...); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	admin, hooks := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, fmt.Sprintf(`state:
  dir: %s/state
  checkpoint_interval: 50ms
  checkpoints: {type: mysql, database: %s}
admin: {listen: %s}
ha: {lease: mysql, name: it-deploy-metrics}
defaults: {to: [out]}
sources:
  deploy-db:
    type: mysql
    addr: %s
    user: ferry_deploy
    password: ${DEPLOY_PASSWORD}
    server_id: %d
    include: ["%s.*"]
    start: %s
    startup_timeout: 5s
  deploy-hooks: {type: webhook, listen: %s, path: /hooks/t}
sinks:
  out: {type: discard}
`, dir, db, admin, shared.Addr, nextServerID(), db, binlogPos(t, shared), hooks))
	// In the environment of every ferry command below, as a container's
	// environment is for its HEALTHCHECK and exec probes.
	t.Setenv("DEPLOY_PASSWORD", "s3cret-deploy")
	p := startFerry(t, cfg)

	exec1(t, conn, "INSERT INTO orders VALUES (1, 9.99), (2, 19.99)", "UPDATE orders SET total = 5 WHERE id = 1")
	eventually(t, 30*time.Second, "a webhook request accepted", func() bool {
		resp, err := http.Post("http://"+hooks+"/hooks/t", "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode/100 == 2
	})
	var text string
	eventually(t, 30*time.Second, "4 events delivered on /metrics", func() bool {
		text = scrapeMetrics(t, admin)
		return sampleValue(text, `ferry_sink_events_delivered_total{sink="out"}`) >= 4
	})
	types := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	for m := range dashboardMetrics(t) {
		if types[m] != agreedMetrics[m] {
			t.Errorf("/metrics: %s has type %q, want %s", m, types[m], agreedMetrics[m])
		}
		if !regexp.MustCompile(`(?m)^` + m + `(_bucket|_sum|_count)?[{ ]`).MatchString(text) {
			t.Errorf("/metrics has no sample of %s", m)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}

	// The image's HEALTHCHECK command, and the Kubernetes readiness probe.
	if code, _, stderr := runFerry(t, 30*time.Second, "health", "-c", cfg); code != 0 {
		t.Errorf("ferry health -c: exit %d: %s", code, stderr)
	}
	eventually(t, 30*time.Second, "ferry health --ready to pass", func() bool {
		code, _, _ := runFerry(t, 30*time.Second, "health", "--ready", "-c", cfg)
		return code == 0
	})
	if code, _, stderr := runFerry(t, 30*time.Second, "health", "--addr", freeAddr(t)); code != 1 {
		t.Errorf("ferry health against a closed port: exit %d, want 1 (%s)", code, stderr)
	}
	if code := p.stop(); code != 0 {
		t.Errorf("ferry exit code %d", code)
	}
}

// demoGrants returns the GRANTs deploy/compose/initdb gives the ferry user,
// on db instead of the demo's shop schema.
func demoGrants(t *testing.T, db string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../deploy/compose/initdb", "02-ferry-user.sh"))
	if err != nil {
		t.Fatal(err)
	}
	var grants []string
	for _, m := range regexp.MustCompile(`(?m)^\s*GRANT (.+ ON \S+) TO `).FindAllStringSubmatch(string(b), -1) {
		grants = append(grants, strings.ReplaceAll(m[1], "shop.*", "`"+db+"`.*"))
	}
	if len(grants) == 0 {
		t.Fatal("02-ferry-user.sh has no GRANT")
	}
	return grants
}

func scrapeMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// sampleValue returns the value of the sample line starting with series, or -1.
func sampleValue(text, series string) float64 {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
