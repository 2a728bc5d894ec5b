package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows long work (backfills, replays): a bar with count, rate and
// ETA on a terminal; a log line every logEvery otherwise.
type progress struct {
	what     string // "rows", "changes"
	bar      *progressbar.ProgressBar
	log      *slog.Logger
	started  time.Time
	first    int64 // done when the display started (a resumed backfill)
	lastLine time.Time
	total    int64
}

const logEvery = 10 * time.Second

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress starts a display of done out of total (0: unknown).
func newProgress(w io.Writer, log *slog.Logger, what, description string, done, total int64) *progress {
	p := &progress{what: what, log: log, started: time.Now(), first: done, lastLine: time.Now(), total: total}
	if isTerminal(w) {
		max := total
		if max <= 0 {
			max = -1
		}
		p.bar = progressbar.NewOptions64(max, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(description),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(what),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionFullWidth(), progressbar.OptionSetRenderBlankState(true))
		_ = p.bar.Set64(done)
	}
	return p
}

// update shows done out of total (total may change: estimates do).
func (p *progress) update(done, total int64) {
	if p.bar != nil {
		if total > 0 && total != p.total && done <= total {
			p.bar.ChangeMax64(total)
		}
		p.total = total
		_ = p.bar.Set64(done)
		return
	}
	p.total = total
	if time.Since(p.lastLine) < logEvery {
		return
	}
	p.lastLine = time.Now()
	args := []any{"done", done, "rate_per_s", int64(p.rate(done))}
	if total > 0 {
		args = append(args, "total", total, "eta", p.eta(done, total).String())
	}
	p.log.Info(p.what+" progress", args...)
}

func (p *progress) rate(done int64) float64 {
	s := time.Since(p.started).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(done-p.first) / s
}

func (p *progress) eta(done, total int64) time.Duration {
	r := p.rate(done)
	if r <= 0 || done >= total {
		return 0
	}
	return time.Duration(float64(total-done) / r * float64(time.Second)).Round(time.Second)
}

// finish ends the display; summary is printed on its own line.
func (p *progress) finish(w io.Writer, done int64, summary string) {
	if p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(w)
	}
	elapsed := time.Since(p.started).Round(time.Millisecond)
	fmt.Fprintf(w, "%s (%d %s in %s, %.0f %s/s)\n", summary, done-p.first, p.what, elapsed, p.rate(done), p.what)
}
