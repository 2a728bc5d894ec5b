// Package scrape reads a Prometheus text exposition, for tests that check
// what /metrics serves as a scraper would see it.
package scrape

import (
	"context"
	"fmt"
	"io"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples are the metric families of one scrape, by name.
type Samples map[string]*dto.MetricFamily

// Get scrapes url.
func Get(ctx context.Context, url string) (Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("scrape %s: %d %s", url, resp.StatusCode, b)
	}
	return Parse(resp.Body)
}

// Parse reads the text format.
func Parse(r io.Reader) (Samples, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return Samples(fams), nil
}

// Find returns the sample of the family name whose labels include every
// name, value pair given.
func (s Samples) Find(name string, labels ...string) (*dto.Metric, bool) {
	f, ok := s[name]
	if !ok {
		return nil, false
	}
	for _, m := range f.GetMetric() {
		if hasLabels(m, labels) {
			return m, true
		}
	}
	return nil, false
}

// Value returns a counter's or gauge's value (a histogram's sample count).
func (s Samples) Value(name string, labels ...string) (float64, bool) {
	m, ok := s.Find(name, labels...)
	switch {
	case !ok:
		return 0, false
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount()), true
	case m.Untyped != nil:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

// Labels returns the label sets of a family's samples.
func (s Samples) Labels(name string) []map[string]string {
	var out []map[string]string
	for _, m := range s[name].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		out = append(out, l)
	}
	return out
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
