package sqlite

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/sync/feed"
)

// A document row keeps its field metadata and its feed positions as small
// JSON objects ({"text":{"v":3,"d":"phone-1"}}, {"user:u-1":{"s":812}}),
// written and read for every document a push touches, the customers its
// notes hang off included. encoding/json's reflection over maps was ~8% of a
// push's server CPU; these functions do the same for the shapes this file
// writes and hand anything else (escapes, other keys, other spellings) to
// encoding/json, so what they read and write is byte for byte what
// encoding/json reads and writes (meta_test.go checks both ways).

// decodeFields decodes a fields column like json.Unmarshal into *out.
func decodeFields(raw []byte, out *map[string]engine.FieldMeta) error {
	m, ok := scanMeta(raw, "v", "d", func(n int64, s string, b, hasB bool) (engine.FieldMeta, bool) {
		return engine.FieldMeta{Version: n, Device: s}, !hasB
	})
	if !ok {
		return json.Unmarshal(raw, out)
	}
	*out = m
	return nil
}

// decodeFeed decodes a feed column like json.Unmarshal into *out.
func decodeFeed(raw []byte, out *map[string]feed.Pos) error {
	m, ok := scanMeta(raw, "s", "r", func(n int64, s string, b, hasB bool) (feed.Pos, bool) {
		return feed.Pos{Seq: n, Revoked: b}, s == ""
	})
	if !ok {
		return json.Unmarshal(raw, out)
	}
	*out = m
	return nil
}

// encodeFields encodes field metadata like json.Marshal.
func encodeFields(m map[string]engine.FieldMeta) ([]byte, error) {
	return encodeMeta(m, func(b []byte, f engine.FieldMeta) []byte {
		b = append(b, `{"v":`...)
		b = strconv.AppendInt(b, f.Version, 10)
		if f.Device != "" {
			b = append(b, `,"d":`...)
			b = appendString(b, f.Device)
		}
		return append(b, '}')
	}), nil
}

// encodeFeed encodes feed positions like json.Marshal.
func encodeFeed(m map[string]feed.Pos) ([]byte, error) {
	return encodeMeta(m, func(b []byte, p feed.Pos) []byte {
		b = append(b, `{"s":`...)
		b = strconv.AppendInt(b, p.Seq, 10)
		if p.Revoked {
			b = append(b, `,"r":true`...)
		}
		return append(b, '}')
	}), nil
}

// encodeMeta writes m as json.Marshal does (null when nil, keys sorted),
// each value by value.
func encodeMeta[V any](m map[string]V, value func([]byte, V) []byte) []byte {
	if m == nil {
		return []byte("null")
	}
	b := make([]byte, 0, 32*len(m)+2)
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = value(b, m[k])
	}
	return append(b, '}')
}

// appendString appends s as a JSON string: plain printable ASCII as is,
// anything else as json.Marshal writes it (it escapes <, > and & too).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// scanMeta reads raw as an object of objects whose members are the integer
// member numKey and an optional string or true/false member optKey, the
// shape encodeFields and encodeFeed write, calling entry for each one
// (entry's bool: the optional member has the kind the shape wants). ok is
// false for anything else: the caller decodes with encoding/json instead.
func scanMeta[V any](raw []byte, numKey, optKey string, entry func(n int64, s string, b, hasB bool) (V, bool)) (out map[string]V, ok bool) {
	s := metaScanner{b: raw}
	if s.lit("null") && s.end() {
		return nil, true
	}
	if !s.byte('{') {
		return nil, false
	}
	out = map[string]V{}
	if s.byte('}') {
		return out, s.end()
	}
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') || !s.byte('{') {
			return nil, false
		}
		var n int64
		var str string
		var b, hasB, hasN bool
		for first := true; !s.byte('}'); first = false {
			if !first && !s.byte(',') {
				return nil, false
			}
			name, ok := s.str()
			if !ok || !s.byte(':') {
				return nil, false
			}
			switch {
			case name == numKey && !hasN:
				if n, ok = s.int(); !ok {
					return nil, false
				}
				hasN = true
			case name == optKey && str == "" && !hasB && s.peek() == '"':
				if str, ok = s.str(); !ok || str == "" {
					return nil, false // "" is what omitempty leaves out: let json decide
				}
			case name == optKey && str == "" && !hasB:
				switch {
				case s.lit("true"):
					b = true
				case s.lit("false"):
				default:
					return nil, false
				}
				hasB = true
			default:
				return nil, false
			}
		}
		if _, dup := out[key]; dup || !hasN {
			return nil, false
		}
		v, fits := entry(n, str, b, hasB)
		if !fits {
			return nil, false
		}
		out[key] = v
		if s.byte('}') {
			return out, s.end()
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// metaScanner reads the compact JSON json.Marshal writes: no white space,
// strings without escapes.
type metaScanner struct {
	b []byte
	i int
}

func (s *metaScanner) end() bool { return s.i == len(s.b) }

func (s *metaScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *metaScanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *metaScanner) lit(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (s *metaScanner) str() (string, bool) {
	if !s.byte('"') {
		return "", false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := string(s.b[start:s.i])
			s.i++
			return v, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", false
		}
	}
	return "", false
}

// int reads an integer as json.Marshal writes one: no plus sign, no leading
// zero, no fraction or exponent.
func (s *metaScanner) int() (int64, bool) {
	start := s.i
	if s.peek() == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || s.b[digits] == '0' && s.i-digits > 1 {
		return 0, false
	}
	if c := s.peek(); c == '.' || c == 'e' || c == 'E' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return n, err == nil
}
