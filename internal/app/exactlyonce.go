package app

import (
	"slices"
	"strings"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/config"
)

// checkExactlyOnce refuses what would break a sink that commits the source
// position with its events (see ferry.ExactlyOnceSink). Routing is judged
// from the rules' from/to and defaults.to, without evaluating their
// conditions: a source that may reach another sink counts as reaching it.
// Other sinks are refused even when idempotent by id (an HTTP endpoint
// deduplicating on ce-id): Ferry cannot know that, and the source resumes
// from the transactional sink's position, so another sink behind it would
// lose changes, or get them again, depending on which sink was ahead.
func checkExactlyOnce(cfg *config.Config) config.Errors {
	var errs config.Errors
	reach := sourceSinks(cfg)
	for _, sink := range cfg.SinkNames() {
		eo, ok := cfg.Sinks[sink].Spec.(ferry.ExactlyOnceSink)
		if !ok || !eo.ExactlyOnce() {
			continue
		}
		path := "sinks." + sink + ".delivery"
		var feeders []string
		for _, src := range cfg.SourceNames() {
			if slices.Contains(reach[src], sink) {
				feeders = append(feeders, src)
			}
		}
		if len(feeders) > 1 {
			errs = append(errs, cfg.Errorf(path, "exactly_once: sources %s all reach sink %s; it can commit the position of one source only: route one source to it",
				strings.Join(feeders, ", "), sink))
		}
		for _, src := range feeders {
			if others := slices.DeleteFunc(slices.Clone(reach[src]), func(s string) bool { return s == sink }); len(others) > 0 {
				errs = append(errs, cfg.Errorf(path, "exactly_once: source %s also reaches sink(s) %s; the source resumes from the position sink %s committed, so they would miss or repeat changes after a crash: give sink %s a source of its own",
					src, strings.Join(others, ", "), sink, sink))
			}
			if everyReplica(cfg.Sources[src]) {
				errs = append(errs, cfg.Errorf(path, "exactly_once: source %s runs on every HA replica with a journal of its own; the replicas would share one transactional id and fence each other",
					src))
			}
		}
		if cfg.Pipeline.DeadLetterSink == sink {
			errs = append(errs, cfg.Errorf(path, "exactly_once: sink %s is the dead_letter_sink; dead letters of other sinks would be written without a position", sink))
		}
	}
	return errs
}

// sourceSinks lists, per source, every sink its changes may be routed to.
func sourceSinks(cfg *config.Config) map[string][]string {
	out := map[string][]string{}
	add := func(src string, sinks []string) {
		for _, s := range sinks {
			if !slices.Contains(out[src], s) {
				out[src] = append(out[src], s)
			}
		}
	}
	for _, src := range cfg.SourceNames() {
		add(src, cfg.Defaults.To) // changes no rule matches
		for _, r := range cfg.Transforms {
			if len(r.From) == 0 || slices.Contains(r.From, src) {
				add(src, r.To)
			}
		}
	}
	return out
}
