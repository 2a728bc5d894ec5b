package webhook

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxXMLDepth bounds nesting; deeper documents are refused, not recursed.
const maxXMLDepth = 64

// xmlNode is an element while a document is converted.
type xmlNode struct {
	name     string
	attrs    []xml.Attr
	text     strings.Builder
	children []*xmlNode
}

// xmlJSON converts an XML document to JSON by this rule:
//   - the result is an object whose one key is the root element's name;
//   - an element with neither attributes nor child elements is its text
//     (surrounding whitespace trimmed; an empty element is "");
//   - any other element is an object: attributes as "@name", child
//     elements by name (siblings sharing a name become an array, in
//     document order), and its non-blank text as "#text";
//   - names are local names (namespace prefixes and xmlns declarations are
//     dropped); every value is a string: XML has no types.
func xmlJSON(raw []byte) ([]byte, error) {
	root, err := parseXML(raw)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteByte('{')
	writeJSONString(&b, root.name)
	b.WriteByte(':')
	writeXMLNode(&b, root)
	b.WriteByte('}')
	return b.Bytes(), nil
}

func parseXML(raw []byte) (*xmlNode, error) {
	dec := xml.NewDecoder(bytes.NewReader(raw))
	dec.Strict = true
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) == maxXMLDepth {
				return nil, fmt.Errorf("nested deeper than %d elements", maxXMLDepth)
			}
			n := &xmlNode{name: t.Name.Local}
			for _, a := range t.Attr {
				if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
					n.attrs = append(n.attrs, a)
				}
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else if root != nil {
				return nil, errors.New("more than one root element")
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if strings.TrimSpace(string(t)) != "" {
				return nil, errors.New("text outside the root element")
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

func writeXMLNode(b *bytes.Buffer, n *xmlNode) {
	text := strings.TrimSpace(n.text.String())
	if len(n.attrs) == 0 && len(n.children) == 0 {
		writeJSONString(b, text)
		return
	}
	b.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	for _, a := range n.attrs {
		sep()
		writeJSONString(b, "@"+a.Name.Local)
		b.WriteByte(':')
		writeJSONString(b, a.Value)
	}
	groups, order := map[string][]*xmlNode{}, []string{}
	for _, c := range n.children {
		if _, seen := groups[c.name]; !seen {
			order = append(order, c.name)
		}
		groups[c.name] = append(groups[c.name], c)
	}
	for _, name := range order {
		sep()
		writeJSONString(b, name)
		b.WriteByte(':')
		if g := groups[name]; len(g) == 1 {
			writeXMLNode(b, g[0])
		} else {
			b.WriteByte('[')
			for i, c := range g {
				if i > 0 {
					b.WriteByte(',')
				}
				writeXMLNode(b, c)
			}
			b.WriteByte(']')
		}
	}
	if text != "" {
		sep()
		writeJSONString(b, "#text")
		b.WriteByte(':')
		writeJSONString(b, text)
	}
	b.WriteByte('}')
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc, _ := json.Marshal(s)
	b.Write(enc)
}
