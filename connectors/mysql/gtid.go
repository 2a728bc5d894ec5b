package mysql

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"
)

// gtidTracker keeps the GTID state of everything committed so far, like the
// server's gtid_binlog_pos (MariaDB: last GTID per domain) or gtid_executed
// (MySQL: a set of intervals per server uuid). It copies values out of
// events: go-mysql mutates GTID structs it handed out earlier.
type gtidTracker struct {
	flavor string
	known  bool // the state is complete, so it can be a resume point

	maria map[uint32]gomysql.MariadbGTID // domain -> last GTID
	my    *gomysql.MysqlGTIDSet

	// the GTID of the transaction being read, applied on commit
	cur      string
	curMaria gomysql.MariadbGTID
	curSID   uuid.UUID
	curGNO   int64
	hasCur   bool
	// text is the rendered state of a MariaDB state of one domain, the
	// GTID last committed (its cur): state then allocates nothing per
	// transaction; "" when not set.
	text string
	// texts holds the MariaDB GTIDs' text, one allocation for many
	// transactions instead of one each.
	texts textArena
}

func newGTIDTracker(flavor string) *gtidTracker {
	g := &gtidTracker{flavor: flavor, maria: map[uint32]gomysql.MariadbGTID{}}
	set, _ := gomysql.ParseMysqlGTIDSet("")
	g.my = set.(*gomysql.MysqlGTIDSet)
	return g
}

// seed replaces the state with a complete GTID set.
func (g *gtidTracker) seed(text string) error {
	if g.flavor == gomysql.MariaDBFlavor {
		m := map[uint32]gomysql.MariadbGTID{}
		for _, part := range strings.Split(text, ",") {
			if part = strings.TrimSpace(part); part == "" {
				continue
			}
			id, err := gomysql.ParseMariadbGTID(part)
			if err != nil {
				return fmt.Errorf("parse MariaDB GTID %q: %w", part, err)
			}
			if prev, ok := m[id.DomainID]; !ok || id.SequenceNumber > prev.SequenceNumber {
				m[id.DomainID] = *id
			}
		}
		g.maria, g.text = m, ""
	} else {
		set, err := gomysql.ParseMysqlGTIDSet(text)
		if err != nil {
			return fmt.Errorf("parse MySQL GTID set %q: %w", text, err)
		}
		g.my = set.(*gomysql.MysqlGTIDSet)
	}
	g.known = true
	return nil
}

// seedFromList takes the binlog state a MariaDB Gtid_list event (or a MySQL
// Previous_gtids event) announces at the start of a file, unless the state is
// already known.
func (g *gtidTracker) seedFromList(ev replication.Event) {
	if g.known {
		return
	}
	switch e := ev.(type) {
	case *replication.MariadbGTIDListEvent:
		parts := make([]string, len(e.GTIDs))
		for i, id := range e.GTIDs {
			parts[i] = id.String()
		}
		_ = g.seed(strings.Join(parts, ","))
	case *replication.PreviousGTIDsEvent:
		_ = g.seed(e.GTIDSets)
	}
}

// beginMaria starts a MariaDB transaction. Its GTID is read from the
// event's bytes, where it is whole whoever decoded the event (go-mysql's
// BinlogSyncer, which Ferry used before reading the dump itself, kept a
// pointer to some events' GTID and overwrote it on its own goroutine).
func (g *gtidTracker) beginMaria(ev *replication.BinlogEvent) {
	g.curMaria = mariaGTIDOf(ev)
	var buf [64]byte // three uint32/uint64 and two dashes fit
	g.cur = g.texts.text(appendMariaGTID(buf[:0], g.curMaria))
	g.hasCur = true
}

// mariaGTIDOf decodes a MariaDB GTID event's GTID from its raw bytes:
// the header's server_id, then sequence number (8 bytes) and domain (4
// bytes), little-endian, at the start of the body.
func mariaGTIDOf(ev *replication.BinlogEvent) gomysql.MariadbGTID {
	body := ev.RawData[min(len(ev.RawData), replication.EventHeaderSize):]
	if len(body) < 12 {
		return ev.Event.(*replication.MariadbGTIDEvent).GTID // not from a stream (tests)
	}
	return gomysql.MariadbGTID{ServerID: ev.Header.ServerID,
		SequenceNumber: binary.LittleEndian.Uint64(body), DomainID: binary.LittleEndian.Uint32(body[8:])}
}

// beginMySQL starts a MySQL transaction; seen reports that the state
// already holds its GTID: a server that sends a transaction the GTID dump
// said was seen (MySQL never should) must not make Ferry deliver it twice.
// MariaDB needs no such check: its sequence numbers are not a set.
func (g *gtidTracker) beginMySQL(e *replication.GTIDEvent) (seen bool) {
	sid, err := uuid.FromBytes(e.SID)
	if err != nil || e.GNO == 0 { // anonymous transaction: no GTIDs on this server
		g.cur, g.hasCur = "", false
		return false
	}
	g.curSID, g.curGNO = sid, e.GNO
	var buf [64]byte // a uuid, a colon and an int64 fit
	b := appendUUID(buf[:0], sid)
	key := b[:len(b):len(b)]
	g.cur = g.texts.text(strconv.AppendInt(append(b, ':'), e.GNO, 10))
	g.hasCur = true
	return g.known && mysqlSetHas(g.my, key, e.GNO)
}

// mysqlSetHas reports whether set holds GTID sid:gno, sid as
// uuid.String spells it (go-mysql's key): without building a one-GTID set
// to call Contain with, once per transaction.
func mysqlSetHas(set *gomysql.MysqlGTIDSet, sid []byte, gno int64) bool {
	us, ok := set.Sets[string(sid)]
	if !ok {
		return false
	}
	for _, iv := range us.Intervals {
		if iv.Start <= gno && gno < iv.Stop {
			return true
		}
	}
	return false
}

// appendUUID appends id as uuid.String spells it, without its allocation.
func appendUUID(b []byte, id uuid.UUID) []byte {
	var text [36]byte
	hex.Encode(text[0:8], id[0:4])
	text[8] = '-'
	hex.Encode(text[9:13], id[4:6])
	text[13] = '-'
	hex.Encode(text[14:18], id[6:8])
	text[18] = '-'
	hex.Encode(text[19:23], id[8:10])
	text[23] = '-'
	hex.Encode(text[24:], id[10:])
	return append(b, text[:]...)
}

// current returns the GTID of the transaction being read, "" if none.
func (g *gtidTracker) current() string { return g.cur }

// commit adds the current transaction's GTID to the state.
func (g *gtidTracker) commit() {
	if !g.hasCur {
		return
	}
	if g.flavor == gomysql.MariaDBFlavor {
		g.maria[g.curMaria.DomainID] = g.curMaria
		g.text = ""
		if len(g.maria) == 1 {
			g.text = g.cur
		}
	} else {
		g.my.AddGTID(g.curSID, g.curGNO)
	}
	g.cur, g.hasCur = "", false
}

// abort forgets the current transaction's GTID (rollback, reconnect).
func (g *gtidTracker) abort() { g.cur, g.hasCur = "", false }

// state renders the complete state, or "" when it is not known.
func (g *gtidTracker) state() string {
	if !g.known {
		return ""
	}
	if g.flavor != gomysql.MariaDBFlavor {
		return g.my.String()
	}
	if g.text != "" && len(g.maria) == 1 {
		return g.text
	}
	// Built with one allocation: it runs once per transaction read.
	var buf [64]byte
	b := buf[:0]
	if len(g.maria) == 1 {
		for _, id := range g.maria {
			b = appendMariaGTID(b, id)
		}
		return string(b)
	}
	domains := make([]uint32, 0, len(g.maria))
	for d := range g.maria {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	for i, d := range domains {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMariaGTID(b, g.maria[d])
	}
	return string(b)
}

// domains lists the MariaDB domains in the state.
func (g *gtidTracker) domains() map[uint32]bool {
	out := map[uint32]bool{}
	for d := range g.maria {
		out[d] = true
	}
	return out
}

func appendMariaGTID(b []byte, id gomysql.MariadbGTID) []byte {
	b = strconv.AppendUint(b, uint64(id.DomainID), 10)
	b = strconv.AppendUint(append(b, '-'), uint64(id.ServerID), 10)
	return strconv.AppendUint(append(b, '-'), id.SequenceNumber, 10)
}

func formatMariaGTID(id gomysql.MariadbGTID) string {
	return strconv.FormatUint(uint64(id.DomainID), 10) + "-" + strconv.FormatUint(uint64(id.ServerID), 10) + "-" + strconv.FormatUint(id.SequenceNumber, 10)
}
