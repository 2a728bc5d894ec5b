package config

import "go.yaml.in/yaml/v3"

// mergeInto merges the root mapping src (a later -c file) into dst: nested
// mappings merge key by key, a later scalar or list replaces the earlier
// one, except the top-level transforms list, which is concatenated so each
// file can add rules. The winning nodes keep their own file positions.
func (l *loader) mergeInto(dst, src *yaml.Node, top bool) {
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		j := findKey(dst, k.Value)
		if j < 0 {
			dst.Content = append(dst.Content, k, v)
			continue
		}
		old := resolve(dst.Content[j+1])
		nv := resolve(v)
		switch {
		case old.Kind == yaml.MappingNode && nv.Kind == yaml.MappingNode:
			merged := &yaml.Node{Kind: yaml.MappingNode, Tag: old.Tag, Line: old.Line, Column: old.Column,
				Content: append([]*yaml.Node(nil), old.Content...)}
			l.d.files[merged] = l.d.files[old]
			l.mergeInto(merged, nv, false)
			dst.Content[j+1] = merged
		case top && k.Value == "transforms" && old.Kind == yaml.SequenceNode && nv.Kind == yaml.SequenceNode:
			seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: old.Tag, Line: old.Line, Column: old.Column,
				Content: append(append([]*yaml.Node(nil), old.Content...), nv.Content...)}
			l.d.files[seq] = l.d.files[old]
			dst.Content[j+1] = seq
		default:
			dst.Content[j], dst.Content[j+1] = k, v
		}
	}
}

func findKey(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}
