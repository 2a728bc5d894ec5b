package mysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// wirePackets frames payloads as a server sends them, sequence numbers
// from seq on; a payload of maxPayload bytes or more is split as the
// protocol splits it (one of exactly maxPayload is followed by an empty
// packet).
func wirePackets(seq uint8, payloads ...[]byte) []byte {
	var out []byte
	for _, p := range payloads {
		for {
			n := min(len(p), maxPayload)
			out = append(out, byte(n), byte(n>>8), byte(n>>16), seq)
			out = append(out, p[:n]...)
			seq++
			p = p[n:]
			if n < maxPayload {
				break
			}
		}
	}
	return out
}

// chunkReader returns its bytes in reads of random sizes, as a socket
// does.
type chunkReader struct {
	b []byte
	r *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.b[:min(len(c.b), 1+c.r.IntN(3000))])
	c.b = c.b[n:]
	return n, nil
}

// TestPacketReaderRandomPackets: packets of random sizes, read in random
// pieces into small blocks, come out whole, and none is overwritten by the
// reading of the ones after it (row values point into them).
func TestPacketReaderRandomPackets(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 11))
	var payloads [][]byte
	for range 2000 {
		p := make([]byte, []int{0, 1, 19, 200, 5000, 40000}[r.IntN(6)]+r.IntN(100))
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		payloads = append(payloads, p)
	}
	pr := packetReader{conn: &chunkReader{b: wirePackets(7, payloads...), r: r}, seq: 7, block: 4 << 10}
	got := make([][]byte, len(payloads))
	for i := range payloads {
		p, err := pr.packet()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(p, payloads[i]) {
			t.Fatalf("packet %d: %d bytes differ from the %d sent", i, len(p), len(payloads[i]))
		}
		got[i] = p
	}
	for i := range got {
		if !bytes.Equal(got[i], payloads[i]) {
			t.Fatalf("packet %d changed after later packets were read", i)
		}
	}
	if _, err := pr.packet(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("after the last packet: %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

// TestPacketReaderJoinsSplitPackets: payloads of 16 MiB and more arrive
// in several packets and are joined.
func TestPacketReaderJoinsSplitPackets(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	exact, over := make([]byte, maxPayload), make([]byte, maxPayload+1000)
	for _, p := range [][]byte{exact, over} {
		for i := range p {
			p[i] = byte(i * 7)
		}
	}
	small := []byte("after")
	pr := packetReader{conn: &chunkReader{b: wirePackets(0, exact, over, small), r: r}}
	for i, want := range [][]byte{exact, over, small} {
		p, err := pr.packet()
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
		if !bytes.Equal(p, want) {
			t.Fatalf("payload %d: %d bytes, want %d", i, len(p), len(want))
		}
	}
}

// TestPacketReaderFailures: a packet out of sequence and a connection
// ending inside a packet are errors.
func TestPacketReaderFailures(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	wire := wirePackets(1, []byte("one"), []byte("two"))
	pr := packetReader{conn: &chunkReader{b: wire, r: r}, seq: 2}
	if _, err := pr.packet(); !errors.Is(err, errPacketSequence) {
		t.Fatalf("sequence 1 where 2 was due: %v, want %v", err, errPacketSequence)
	}
	for n := 1; n < len(wire); n++ {
		if n == 7 { // the first packet whole
			continue
		}
		pr := packetReader{conn: &chunkReader{b: wire[:n], r: r}, seq: 1}
		var err error
		for err == nil {
			_, err = pr.packet()
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut after %d bytes: %v, want %v", n, err, io.ErrUnexpectedEOF)
		}
	}
}

// TestEventFramerChecksums: once a format description announces CRC32,
// every event's checksum is verified and cut from its body; any changed
// byte fails the event. Before it (the server's first, artificial rotate
// event), and after one announcing none, nothing is verified.
func TestEventFramerChecksums(t *testing.T) {
	var f eventFramer
	rotate := binlogEvent(replication.ROTATE_EVENT, append(binary.LittleEndian.AppendUint64(nil, 4), "mariadb-bin.000002"...))
	ev, err := f.frame(rotate)
	if err != nil {
		t.Fatal(err)
	}
	if re := ev.Event.(*replication.RotateEvent); string(re.NextLogName) != "mariadb-bin.000002" || re.Position != 4 {
		t.Fatalf("rotate decoded as %+v", re)
	}
	if _, err := f.frame(checksummedFormatDescription()); err != nil || !f.crc {
		t.Fatalf("format description: crc %v, %v", f.crc, err)
	}
	xid := sealed(binlogEvent(replication.XID_EVENT, append(binary.LittleEndian.AppendUint64(nil, 42), 0, 0, 0, 0)))
	ev, err = f.frame(xid)
	if err != nil {
		t.Fatal(err)
	}
	if g := ev.Event.(*replication.GenericEvent); len(g.Data) != 8 {
		t.Fatalf("body of %d bytes, want 8 (the checksum cut)", len(g.Data))
	}
	for i := range xid {
		bad := bytes.Clone(xid)
		bad[i] ^= 0x10
		if i >= 9 && i < 13 { // the event's size: the size check fails it first
			if _, err := f.frame(bad); err == nil {
				t.Fatalf("byte %d changed: no error", i)
			}
			continue
		}
		if _, err := f.frame(bad); !errors.Is(err, errChecksum) {
			t.Fatalf("byte %d changed: %v, want %v", i, err, errChecksum)
		}
	}
	if _, err := f.frame(formatDescription()); err != nil || f.crc {
		t.Fatalf("format description without checksums: crc %v, %v", f.crc, err)
	}
	if _, err := f.frame(binlogEvent(replication.XID_EVENT, make([]byte, 8))); err != nil {
		t.Fatalf("unchecksummed event after it: %v", err)
	}
}

// TestEventFramerMalformed: an event whose size disagrees with its packet,
// or a rotate or format description cut short, is an error, not a panic.
func TestEventFramerMalformed(t *testing.T) {
	var f eventFramer
	xid := binlogEvent(replication.XID_EVENT, make([]byte, 8))
	if _, err := f.frame(xid[:len(xid)-1]); err == nil {
		t.Fatal("an event shorter than its header says: no error")
	}
	if _, err := f.frame(xid[:10]); err == nil {
		t.Fatal("a header cut short: no error")
	}
	for _, whole := range [][]byte{binlogEvent(replication.ROTATE_EVENT, make([]byte, 12)), formatDescription()} {
		for n := replication.EventHeaderSize; n < len(whole); n++ {
			cut := bytes.Clone(whole[:n])
			binary.LittleEndian.PutUint32(cut[9:], uint32(n))
			var f eventFramer
			_, _ = f.frame(cut) // an error or an event, never a panic
		}
	}
}

// TestRowsEventsOwnTheirBytes: a rows event is framed into bytes of its
// own, not the block it was read into: its row values live as long as
// their changes, and must neither keep the block alive nor see it change.
func TestRowsEventsOwnTheirBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	var f eventFramer
	if _, err := f.frame(formatDescription()); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		block := randomRowsEvent(r, false)
		want := bytes.Clone(block)
		ev, err := f.frame(block)
		if err != nil {
			t.Fatal(err)
		}
		for i := range block {
			block[i] ^= 0xff
		}
		body := ev.Event.(*replication.GenericEvent).Data
		if !bytes.Equal(ev.RawData, want) || !bytes.Equal(body, want[replication.EventHeaderSize:]) {
			t.Fatal("a rows event's bytes changed with the block it was read into")
		}
	}
}

// TestDumpReaderSurvivesMalformedPackets: a dump that sends what no server
// should (an error packet cut short, which go-mysql's decoder indexes
// unchecked; a packet of an unknown kind; an end of dump) ends the
// connection with an error, the first as fatal, instead of a panic ending
// the process.
func TestDumpReaderSurvivesMalformedPackets(t *testing.T) {
	for _, c := range []struct {
		packet []byte
		fatal  bool
	}{{[]byte{0xff}, true}, {[]byte{0x42, 1, 2}, false}, {[]byte{0xfe, 0, 0, 2, 0}, false}, {[]byte{}, false}} {
		f := newFeed(gomysql.MariaDBFlavor)
		d := &dumpConn{conn: &client.Conn{}, packets: packetReader{conn: bytes.NewReader(wirePackets(1, c.packet)), seq: 1}}
		d.start(f)
		err := <-f.ended
		<-d.done
		if err == nil || isFatal(err) != c.fatal {
			t.Errorf("packet %x: %v (fatal %v), want an error, fatal %v", c.packet, err, isFatal(err), c.fatal)
		}
	}
}
