package ferry

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/jsonscan"
)

// MarkBinaryData decides how e's data travels in the JSON formats
// (structured mode, batches, stdout, EventBridge detail): as `data` when it
// is JSON (a JSON media type, valid UTF-8 JSON) or text (a textual media
// type, valid UTF-8), and as `data_base64` otherwise, as the CloudEvents
// JSON format requires for binary data. It never changes the bytes, only
// how they are written: binary-mode bindings send them as they are.
func MarkBinaryData(e *event.Event) {
	data := e.DataEncoded
	if len(data) == 0 || e.DataBase64 {
		return
	}
	e.DataBase64 = !representable(e.DataMediaType(), e.DataContentType(), data)
}

// representable reports whether data can be written as the JSON format's
// `data` member without loss.
func representable(mediaType, contentType string, data []byte) bool {
	if !utf8.Valid(data) || !unicodeCharset(contentType) {
		return false
	}
	if mediaType == "" || mediaType == "application/json" || mediaType == "text/json" || strings.HasSuffix(mediaType, "+json") {
		return jsonscan.Valid(data)
	}
	return textual(mediaType, contentType)
}

// unicodeCharset reports whether contentType names no charset, UTF-8 or
// US-ASCII: bytes in another charset (ISO-8859-1, say) that happen to be
// valid UTF-8 would be read as other characters.
func unicodeCharset(contentType string) bool {
	_, params, err := mime.ParseMediaType(contentType)
	cs := params["charset"]
	return err != nil || cs == "" || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "us-ascii")
}

// textual reports whether a media type carries text: text/*, XML, forms,
// or any type that names a charset.
func textual(mediaType, contentType string) bool {
	switch {
	case strings.HasPrefix(mediaType, "text/"), strings.HasSuffix(mediaType, "/xml"), strings.HasSuffix(mediaType, "+xml"),
		mediaType == "application/x-www-form-urlencoded", mediaType == "application/javascript",
		mediaType == "application/yaml", mediaType == "application/x-yaml":
		return true
	}
	_, params, err := mime.ParseMediaType(contentType)
	return err == nil && params["charset"] != ""
}

// WriteStructured appends e to buf in the CloudEvents JSON format, the
// SDK's encoding (what json.Marshal(e) writes, without escaping HTML).
// json.Marshal would pass the SDK's output through encoding/json's
// validating compaction, a second pass over every byte: 21 % of ferry's
// CPU in HTTP batch mode (issue 18). Only what that pass could have
// rejected is checked here, at three times encoding/json's speed
// (jsonscan): data the SDK copies in as it is (a JSON content type, not
// base64) must be JSON; the attributes and extensions it writes itself
// are. On error buf is as it was.
func WriteStructured(buf *bytes.Buffer, e *event.Event) error {
	if !e.DataBase64 && len(e.DataEncoded) > 0 && sdkWritesDataAsIs(e.DataContentType()) && !jsonscan.Valid(e.DataEncoded) {
		return ErrDataNotJSON
	}
	mark := buf.Len()
	if err := event.WriteJson(e, buf); err != nil {
		buf.Truncate(mark)
		return fmt.Errorf("write the event as JSON: %w", err)
	}
	return nil
}

// sdkWritesDataAsIs reports whether the SDK's JSON writer copies data of
// contentType into the event as raw JSON (its isJSON on the media type).
func sdkWritesDataAsIs(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "", event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON:
		return true
	}
	return false
}

// MarshalStructured is WriteStructured into a new slice: the structured
// mode's message body.
func MarshalStructured(e *event.Event) ([]byte, error) {
	var buf bytes.Buffer
	if err := WriteStructured(&buf, e); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
