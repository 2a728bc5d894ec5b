package transform

import "unsafe"

// eventArena carves the events of one Worker, and their encoded data, out
// of blocks shared by consecutive events: two allocations per block
// instead of two per event (a bulk load builds one event per row, and
// their allocations were most of the transform's CPU, issue 18). A block
// is never reused or grown, since sinks hold the events; an event a sink
// keeps for a retry keeps its block's neighbours reachable, at most
// arenaEvents events and arenaData bytes: events with large data are
// never carved from a block (see arenaLarge).
type eventArena struct {
	events []eventAlloc
	data   []byte
	// last is the table of the Worker's last change (see
	// DefaultMapping.tableNamesOf); it lives here, with the rest of a
	// Worker's own state the mapping uses.
	last struct {
		key   tableKey
		names *tableNames
	}
}

const (
	arenaEvents = 64
	arenaData   = 16 << 10
)

// arenaLarge is the data size from which an event and its data get their
// own allocations: a block keeps every event carved from it reachable
// while any one of them is, so a block of events with megabytes of data
// each would hold tens of delivered events' data beyond the pipeline's
// max_in_flight_bytes.
const arenaLarge = arenaData / 8

// event returns a zeroed eventAlloc for an event with dataLen bytes of
// data; a nil arena, or large data, allocates it alone.
func (a *eventArena) event(dataLen int) *eventAlloc {
	if a == nil || dataLen > arenaLarge {
		return new(eventAlloc)
	}
	if len(a.events) == cap(a.events) {
		a.events = make([]eventAlloc, 0, arenaEvents)
	}
	a.events = a.events[:len(a.events)+1]
	return &a.events[len(a.events)-1]
}

// copy returns a copy of b whose capacity ends with it, so that appending
// to it never writes into a neighbour's data. Large data, or a nil arena,
// gets its own allocation.
func (a *eventArena) copy(b []byte) []byte {
	if a == nil || len(b) > arenaLarge {
		return append([]byte(nil), b...)
	}
	if cap(a.data)-len(a.data) < len(b) {
		a.data = make([]byte, 0, arenaData)
	}
	n := len(a.data)
	a.data = append(a.data, b...)
	return a.data[n:len(a.data):len(a.data)]
}

// text is b as a string carved from the data block (a nil arena, or
// large b, allocates it alone). The block's bytes are only ever appended
// to, so the string never changes.
func (a *eventArena) text(b []byte) string {
	if a == nil || len(b) > arenaLarge {
		return string(b)
	}
	c := a.copy(b)
	return unsafe.String(unsafe.SliceData(c), len(c))
}
