package httpsink

import (
	"math"
	"sync/atomic"
	"time"
)

// Tuning of the adaptive concurrency limit (adaptive_concurrency: true).
const (
	// decreaseRatio multiplies the limit when the endpoint pushes back.
	decreaseRatio = 0.9
	// rttAlpha weighs a window's mean response time in the moving average.
	rttAlpha = 0.3
	// rttWarmup is how many windows feed the average before a rise of the
	// response time counts as push-back.
	rttWarmup = 3
	// rttRise is how far above its average (in deviations, and at least by
	// rttRiseMin of it) a window's mean response time must be to count as
	// the endpoint queueing requests.
	rttRise    = 2.0
	rttRiseMin = 0.2
	// maxProbeWait caps how many clean Writes the limit waits before it
	// tries again a limit the endpoint pushed back at.
	maxProbeWait = 32
)

// window is what one Write saw: the limit it ran with, how many requests
// ran at once at most, and how the endpoint answered.
type window struct {
	lanes    int           // requests the Write could run at once (at most the limit)
	pushback int           // 429 or 503 answers, and requests unanswered within the timeout
	answered int           // requests that got an answer
	rtt      time.Duration // sum of the answered requests' response times
}

// aimd is the adaptive concurrency limit of an HTTP sink: how many requests
// a Write runs in parallel, from 1 to max. It starts at max (a healthy
// endpoint loses nothing) and, after each Write (Writes are serial, so one
// Write is one observation window), multiplies the limit by decreaseRatio
// when the endpoint pushed back (a 429 or 503 answer, a request unanswered
// in time, or a mean response time clearly above its moving average: the
// endpoint queues), and otherwise adds one when the Write used the whole
// limit.
//
// Plain AIMD probes the limit that was just pushed back at again after a
// single clean Write, so against an endpoint with a fixed capacity every
// other Write costs a wave of throttled requests. aimd remembers that limit
// (the ceiling) and waits probeWait clean Writes before trying it again:
// twice as many each time the same ceiling pushes back (up to
// maxProbeWait), half as many after a probe goes through or a push-back
// comes below the ceiling (the endpoint takes more, or less, than it did:
// either way what was learned about the old ceiling counts for less).
// Below the ceiling the limit climbs one per Write as before.
//
// Only the sink's Write goroutine calls observe; current may be read from
// any goroutine.
type aimd struct {
	max       int
	limit     float64
	ceiling   int          // the limit the endpoint last pushed back at; 0 once a probe went through
	probeWait int          // clean Writes at ceiling-1 before probing the ceiling
	waited    int          // clean Writes at ceiling-1 so far
	avg       float64      // moving average of windows' mean response time, seconds
	dev       float64      // moving average of its absolute deviation
	warm      int          // windows averaged so far, up to rttWarmup
	shown     atomic.Int64 // int(limit), for current
}

func newAIMD(max int) *aimd {
	c := &aimd{max: max, limit: float64(max), probeWait: 1}
	c.shown.Store(int64(max))
	return c
}

// current returns the limit the next Write runs with.
func (c *aimd) current() int { return int(c.shown.Load()) }

// observe updates the limit after a Write and returns it.
func (c *aimd) observe(w window) int {
	queueing := c.observeRTT(w)
	switch {
	case w.pushback > 0 || queueing:
		c.pushedBack()
	case w.lanes >= int(c.limit) && w.answered > 0:
		c.usedCleanly()
	}
	c.shown.Store(int64(c.limit))
	return int(c.limit)
}

// pushedBack lowers the limit after push-back and remembers where it came.
func (c *aimd) pushedBack() {
	at := int(c.limit)
	switch {
	case c.ceiling > 0 && at >= c.ceiling: // the same ceiling again
		c.probeWait = min(2*c.probeWait, maxProbeWait)
	case at < c.ceiling: // the endpoint takes less than it did
		c.probeWait = max(1, c.probeWait/2)
	}
	c.ceiling, c.waited = at, 0
	c.limit = max(1, math.Floor(c.limit*decreaseRatio))
}

// usedCleanly raises the limit after a Write that used it all without
// push-back, waiting before it probes the ceiling.
func (c *aimd) usedCleanly() {
	if c.ceiling > 0 && int(c.limit) >= c.ceiling {
		c.ceiling = 0 // the probe went through
		c.probeWait = max(1, c.probeWait/2)
	}
	if c.ceiling > 0 && int(c.limit)+1 >= c.ceiling {
		if c.waited++; c.waited < c.probeWait {
			return
		}
		c.waited = 0
	}
	c.limit = min(float64(c.max), c.limit+1)
}

// observeRTT feeds a window's mean response time into the moving average
// and reports whether it was clearly above it.
func (c *aimd) observeRTT(w window) bool {
	if w.answered == 0 {
		return false
	}
	mean := (w.rtt / time.Duration(w.answered)).Seconds()
	rising := c.warm >= rttWarmup && mean > c.avg+max(rttRise*c.dev, rttRiseMin*c.avg)
	if c.warm == 0 {
		c.avg = mean
	} else {
		c.dev += rttAlpha * (math.Abs(mean-c.avg) - c.dev)
		c.avg += rttAlpha * (mean - c.avg)
	}
	c.warm = min(c.warm+1, rttWarmup)
	return rising
}

// windowCounter gathers a window while a Write's lanes run.
type windowCounter struct {
	pushback, answered atomic.Int64
	rtt                atomic.Int64 // nanoseconds
}

func (wc *windowCounter) reset() {
	wc.pushback.Store(0)
	wc.answered.Store(0)
	wc.rtt.Store(0)
}

func (wc *windowCounter) window(lanes int) window {
	return window{lanes: lanes, pushback: int(wc.pushback.Load()), answered: int(wc.answered.Load()),
		rtt: time.Duration(wc.rtt.Load())}
}
