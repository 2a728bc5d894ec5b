package mysql

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/ferry-cdc/ferry"
)

// position is where the source resumes: the next event to read (File, Pos)
// and the GTID state of everything before it. GTID is empty when the state is
// not known completely (a server without GTIDs, or a MySQL stream started at a
// FILE:POS before its first rotation); the source then resumes by FILE:POS.
//
// ServerID is the server_id of the server whose binlog File and Pos refer
// to (0: unknown, as in checkpoints older than it and positions a user
// typed, which are taken as the configured server's). A GTID state is the
// same on every server of a replication topology; a file position is not,
// so a checkpoint without GTID state is refused on another server.
type position struct {
	File     string `json:"file,omitempty"`
	Pos      uint32 `json:"pos,omitempty"`
	GTID     string `json:"gtid,omitempty"`
	ServerID uint32 `json:"server_id,omitempty"`
}

// encode writes p as json.Marshal would, without reflection: it runs once
// per transaction read (issue 18).
func (p position) encode() ferry.Position {
	return p.appendEncoded(make([]byte, 0, 64+len(p.File)+len(p.GTID))) // keys, quotes and two uint32s fit in 64
}

// appendEncoded appends p's encoding to b.
func (p position) appendEncoded(b []byte) []byte {
	b = append(b, '{')
	if p.File != "" {
		b = append(b, `"file":`...)
		b = appendJSONString(b, p.File)
	}
	if p.Pos != 0 {
		b = jsonSep(b)
		b = strconv.AppendUint(append(b, `"pos":`...), uint64(p.Pos), 10)
	}
	if p.GTID != "" {
		b = jsonSep(b)
		b = append(b, `"gtid":`...)
		b = appendJSONString(b, p.GTID)
	}
	if p.ServerID != 0 {
		b = jsonSep(b)
		b = strconv.AppendUint(append(b, `"server_id":`...), uint64(p.ServerID), 10)
	}
	return append(b, '}')
}

// jsonSep appends a comma unless b holds only the opening brace.
func jsonSep(b []byte) []byte {
	if len(b) > 1 {
		return append(b, ',')
	}
	return b
}

// appendJSONString appends s quoted; binlog file names and GTID sets are
// plain ASCII, anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // cannot fail for a string
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func decodePosition(b ferry.Position) (position, error) {
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return position{}, fmt.Errorf("decode mysql position %q: %w", b, err)
	}
	if p.File == "" && p.GTID == "" {
		return position{}, fmt.Errorf("mysql position %q has neither a file nor a GTID set", b)
	}
	return p, nil
}

// String renders the position as users write it: FILE:POS, the GTID set, or
// both as "FILE:POS gtid=SET".
func (p position) String() string {
	switch {
	case p.File == "":
		return p.GTID
	case p.GTID == "":
		return p.File + ":" + strconv.FormatUint(uint64(p.Pos), 10)
	default:
		return p.File + ":" + strconv.FormatUint(uint64(p.Pos), 10) + " gtid=" + p.GTID
	}
}

var (
	mariadbGTIDSet = regexp.MustCompile(`^\d+-\d+-\d+(,\s*\d+-\d+-\d+)*$`)
	mysqlUUID      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	filePos        = regexp.MustCompile(`^([^\s:]+):(\d+)$`)
)

// gtidFlavor tells which server family a GTID set text belongs to.
func gtidFlavor(s string) (string, bool) {
	switch {
	case mariadbGTIDSet.MatchString(s):
		return gomysql.MariaDBFlavor, true
	case mysqlUUID.MatchString(s):
		return gomysql.MySQLFlavor, true
	}
	return "", false
}

// parsePositionText parses what a user types: FILE:POS (reading starts at
// that event), or a GTID set (everything in it was already seen; reading
// starts after it): MariaDB `0-1-100[,1-2-7]` or MySQL `uuid:1-100[,...]`.
func parsePositionText(s string) (position, error) {
	s = strings.TrimSpace(s)
	if flavor, ok := gtidFlavor(s); ok {
		s = strings.ReplaceAll(s, " ", "")
		if _, err := gomysql.ParseGTIDSet(flavor, s); err != nil {
			return position{}, fmt.Errorf("invalid %s GTID set %q: %w", flavor, s, err)
		}
		return position{GTID: s}, nil
	}
	if m := filePos.FindStringSubmatch(s); m != nil {
		if !validFileName(m[1]) {
			return position{}, fmt.Errorf("invalid binlog file name in %q: want printable UTF-8 like mysql-bin.000003", s)
		}
		pos, err := strconv.ParseUint(m[2], 10, 32)
		if err != nil || pos < 4 {
			return position{}, fmt.Errorf("invalid binlog offset in %q: must be a number from 4 (the first event) to 4294967295", s)
		}
		return position{File: m[1], Pos: uint32(pos)}, nil
	}
	return position{}, fmt.Errorf("invalid position %q: want FILE:POS (mysql-bin.000003:4) or a GTID set (MariaDB 0-1-100, MySQL uuid:1-100)", s)
}

// validFileName: binlog files are named by the server (basename.NNNNNN);
// a name with invalid UTF-8 or control characters is a typo or damage, and
// would not survive the JSON the position is stored as.
func validFileName(name string) bool {
	if !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// startMode is the `start` setting.
type startMode struct {
	latest, earliest bool
	at               position
}

func parseStart(s string) (startMode, error) {
	switch s {
	case "", "latest":
		return startMode{latest: true}, nil
	case "earliest":
		return startMode{earliest: true}, nil
	}
	p, err := parsePositionText(s)
	if err != nil {
		return startMode{}, fmt.Errorf("must be latest, earliest or a position: %w", err)
	}
	return startMode{at: p}, nil
}

// Codec converts mysql source positions for `ferry checkpoint`.
type Codec struct{}

var _ ferry.PositionCodec = Codec{}

// ParsePosition parses FILE:POS or a GTID set.
func (Codec) ParsePosition(text string) (ferry.Position, error) {
	p, err := parsePositionText(text)
	if err != nil {
		return nil, err
	}
	return p.encode(), nil
}

// FormatPosition renders a stored position.
func (Codec) FormatPosition(b ferry.Position) (string, error) {
	p, err := decodePosition(b)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

// comparePositions orders two binlog coordinates of one server: by the
// sequence number of the file (the digits after its last dot), then by
// offset. It returns -1, 0 or +1.
func comparePositions(a, b position) int {
	if a.File != b.File {
		na, errA := strconv.ParseUint(a.File[strings.LastIndexByte(a.File, '.')+1:], 10, 64)
		nb, errB := strconv.ParseUint(b.File[strings.LastIndexByte(b.File, '.')+1:], 10, 64)
		if errA != nil || errB != nil {
			return strings.Compare(a.File, b.File)
		}
		if na != nb {
			if na < nb {
				return -1
			}
			return 1
		}
	}
	switch {
	case a.Pos < b.Pos:
		return -1
	case a.Pos > b.Pos:
		return 1
	}
	return 0
}
