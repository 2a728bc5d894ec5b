//go:build race

package integration

// raceEnabled builds the ferry binary with the race detector when the tests
// themselves run with it, so end-to-end runs check Ferry's concurrency too.
const raceEnabled = true
