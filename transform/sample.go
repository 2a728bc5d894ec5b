package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// A sample is a change written as JSON, for testing rules offline
// (`ferry transform test --input`) and recorded by `ferry run --capture`:
// the default event's data object plus the source's name and the change id:
//
//	{"source_name":"shop-db","id":"0-1-9#1","op":"create","db":"shop","table":"orders",
//	 "pk":{"id":1},"before":null,"after":{"id":1,"total":"9.50"},
//	 "source":{"file":"mysql-bin.000001","pos":4,"gtid":"0-1-9","server_id":1,"ts_ms":1767225600000},
//	 "tx":{"id":"0-1-9","order":1}}
//
// Only op, db and table are required. Column values are read back the way
// events carry them: whole numbers become integers, other numbers doubles,
// arrays of strings SET labels, other arrays and objects JSON columns.

// A webhook request's sample carries the request instead of rows:
//
//	{"source_name":"crm","id":"d-1","op":"request","source":{"ts_ms":1767225600000},
//	 "request":{"method":"POST","path":"/hooks/crm","headers":{"X-Tenant":"acme"},
//	            "query":{"v":"2"},"content_type":"application/json","body":{"order":42}}}
//
// body is JSON for JSON content types, else the text; "event" holds a
// CloudEvent the request carried. Header and query values may be strings
// or arrays of strings.

type sampleRequest struct {
	Method      string                     `json:"method"`
	Path        string                     `json:"path"`
	Remote      string                     `json:"remote,omitempty"`
	Headers     map[string]json.RawMessage `json:"headers,omitempty"`
	Query       map[string]json.RawMessage `json:"query,omitempty"`
	ContentType string                     `json:"content_type,omitempty"`
	Body        json.RawMessage            `json:"body,omitempty"`
	Event       json.RawMessage            `json:"event,omitempty"`
	Extensions  map[string]string          `json:"extensions,omitempty"`
}

// AppendSample appends the sample form of c.
func AppendSample(dst []byte, c *ferry.Change) []byte {
	if c.Request != nil {
		return appendRequestSample(dst, c)
	}
	dst = append(dst, `{"source_name":`...)
	dst = appendString(dst, c.Source)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, c.ID)
	dst = append(dst, ',')
	data := AppendChangeData(nil, c)
	return append(dst, data[1:]...)
}

func appendRequestSample(dst []byte, c *ferry.Change) []byte {
	r := c.Request
	sr := sampleRequest{Method: r.Method, Path: r.Path, Remote: r.RemoteAddr, ContentType: r.ContentType, Extensions: r.Extensions}
	sr.Headers, sr.Query = rawValues(r.Header), rawValues(r.Query)
	if r.Event != nil {
		sr.Event, _ = json.Marshal(r.Event)
	} else if len(r.Data) > 0 {
		if (r.ContentType == "" || isJSONType(r.ContentType)) && json.Valid(r.Data) {
			sr.Body = r.Data
		} else {
			sr.Body, _ = json.Marshal(string(r.Data))
		}
	}
	req, _ := json.Marshal(sr)
	dst = append(dst, `{"source_name":`...)
	dst = appendString(dst, c.Source)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, c.ID)
	dst = append(dst, `,"op":"request","source":{"ts_ms":`...)
	dst = strconv.AppendInt(dst, c.Time.UnixMilli(), 10)
	dst = append(dst, `},"request":`...)
	dst = append(dst, req...)
	return append(dst, '}')
}

func rawValues(m map[string][]string) map[string]json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k], _ = json.Marshal(v)
	}
	return out
}

type sampleJSON struct {
	SourceName string          `json:"source_name"`
	ID         string          `json:"id"`
	Op         string          `json:"op"`
	DB         string          `json:"db"`
	Table      string          `json:"table"`
	PK         json.RawMessage `json:"pk"`
	Before     json.RawMessage `json:"before"`
	After      json.RawMessage `json:"after"`
	Source     struct {
		File     string `json:"file"`
		Pos      uint64 `json:"pos"`
		GTID     string `json:"gtid"`
		ServerID uint32 `json:"server_id"`
		TsMs     int64  `json:"ts_ms"`
	} `json:"source"`
	Tx struct {
		ID    string `json:"id"`
		Order int    `json:"order"`
	} `json:"tx"`
	Request *sampleRequest `json:"request"`
}

// ParseSamples reads samples: a JSON array, one object, or objects one
// after another (JSON lines, as --capture writes them). defaultSource names
// the source of samples without source_name ("" makes it required).
func ParseSamples(r io.Reader, defaultSource string) ([]ferry.Change, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(t, &items); err != nil {
			return nil, fmt.Errorf("samples: %w", err)
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(raw))
		for {
			var m json.RawMessage
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("sample %d: %w", len(items), err)
			}
			items = append(items, m)
		}
	}
	out := make([]ferry.Change, 0, len(items))
	for i, item := range items {
		c, err := parseSample(item, defaultSource)
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseSample(raw json.RawMessage, defaultSource string) (ferry.Change, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var s sampleJSON
	if err := dec.Decode(&s); err != nil {
		return ferry.Change{}, err
	}
	if s.Request != nil && s.Op == "" {
		s.Op = "request"
	}
	op, err := ferry.ParseOp(s.Op)
	if err != nil {
		return ferry.Change{}, fmt.Errorf("op: %w", err)
	}
	if op == ferry.OpRequest {
		return parseRequestSample(&s, defaultSource)
	}
	if s.DB == "" || s.Table == "" {
		return ferry.Change{}, errors.New("db and table are required")
	}
	c := ferry.Change{ID: s.ID, Op: op, Source: s.SourceName, DB: s.DB, Table: s.Table, Time: time.UnixMilli(s.Source.TsMs).UTC(),
		Binlog: ferry.BinlogCoords{File: s.Source.File, Pos: s.Source.Pos, GTID: s.Source.GTID, ServerID: s.Source.ServerID,
			TxID: s.Tx.ID, TxOrder: s.Tx.Order}}
	if c.Source == "" {
		if defaultSource == "" {
			return ferry.Change{}, errors.New("source_name is required: the configuration has several sources")
		}
		c.Source = defaultSource
	}
	if c.ID == "" {
		c.ID = c.Binlog.TxID + "#" + strconv.Itoa(c.Binlog.TxOrder)
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *ferry.Row
	}{{"pk", s.PK, &c.Key}, {"before", s.Before, &c.Before}, {"after", s.After, &c.After}} {
		if *f.dst, err = parseRow(f.raw); err != nil {
			return ferry.Change{}, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return c, nil
}

func parseRequestSample(s *sampleJSON, defaultSource string) (ferry.Change, error) {
	if s.Request == nil {
		return ferry.Change{}, errors.New(`op "request" needs a "request" object`)
	}
	sr := s.Request
	c := ferry.Change{ID: s.ID, Op: ferry.OpRequest, Source: s.SourceName, Time: time.UnixMilli(s.Source.TsMs).UTC()}
	if c.Source == "" {
		if defaultSource == "" {
			return ferry.Change{}, errors.New("source_name is required: the configuration has several sources")
		}
		c.Source = defaultSource
	}
	if c.ID == "" {
		c.ID = "sample"
	}
	req := &ferry.Request{Method: sr.Method, Path: sr.Path, RemoteAddr: sr.Remote, ContentType: sr.ContentType, Extensions: sr.Extensions}
	if req.Method == "" {
		req.Method = "POST"
	}
	var err error
	if req.Header, err = stringsMap(sr.Headers); err != nil {
		return ferry.Change{}, fmt.Errorf("request.headers: %w", err)
	}
	if req.Query, err = stringsMap(sr.Query); err != nil {
		return ferry.Change{}, fmt.Errorf("request.query: %w", err)
	}
	if len(sr.Event) > 0 {
		var e event.Event
		if err := json.Unmarshal(sr.Event, &e); err != nil {
			return ferry.Change{}, fmt.Errorf("request.event: %w", err)
		}
		req.Event, req.Data, req.ContentType = &e, e.Data(), e.DataContentType()
	} else if len(sr.Body) > 0 {
		var text string
		if req.ContentType != "" && !isJSONType(req.ContentType) && json.Unmarshal(sr.Body, &text) == nil {
			req.Data = []byte(text)
		} else {
			req.Data = append([]byte(nil), sr.Body...)
			if req.ContentType == "" {
				req.ContentType = contentTypeJSON
			}
		}
	}
	c.Request = req
	return c, nil
}

// stringsMap accepts {"k": "v"} and {"k": ["v1", "v2"]}.
func stringsMap(m map[string]json.RawMessage) (map[string][]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string][]string, len(m))
	for k, raw := range m {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			out[k] = []string{one}
			continue
		}
		var many []string
		if err := json.Unmarshal(raw, &many); err != nil {
			return nil, fmt.Errorf("%s: want a string or an array of strings", k)
		}
		out[k] = many
	}
	return out, nil
}

// parseRow reads a JSON object into a Row, keeping the column order.
func parseRow(raw json.RawMessage) (ferry.Row, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || string(t) == "null" {
		return ferry.Row{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ferry.Row{}, errors.New("want an object of column values")
	}
	r := ferry.Row{Columns: []string{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ferry.Row{}, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return ferry.Row{}, err
		}
		r.Columns = append(r.Columns, tok.(string))
		r.Values = append(r.Values, sampleValue(v))
	}
	return r, nil
}

func sampleValue(raw json.RawMessage) any {
	t := bytes.TrimSpace(raw)
	switch {
	case len(t) == 0 || string(t) == "null":
		return nil
	case string(t) == "true" || string(t) == "false":
		return string(t) == "true"
	case t[0] == '"':
		var s string
		_ = json.Unmarshal(t, &s)
		return s
	case t[0] == '[':
		var labels []string
		if json.Unmarshal(t, &labels) == nil {
			return labels
		}
		return json.RawMessage(t)
	case t[0] == '{':
		return json.RawMessage(t)
	}
	n := json.Number(t)
	if i, err := n.Int64(); err == nil {
		return i
	}
	if u, err := strconv.ParseUint(string(t), 10, 64); err == nil {
		return u
	}
	f, _ := n.Float64()
	return f
}
