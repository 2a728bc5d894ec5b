package ferry

import (
	"encoding/json"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
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
		return json.Valid(data)
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
