package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Pushed JSON must mean the same thing to every reader before it is stored:
// a document with two "status" keys is "confirmed" to a reader that keeps the
// first and "draft" to one that keeps the last; invalid UTF-8 turns every
// pull that carries it into invalid JSON for a strict decoder; 1e400 is a
// number no client can hold. The engine refuses all three, per mutation.

// MaxSafeInteger is the largest integer every client can represent exactly
// (2^53-1, JavaScript's Number.MAX_SAFE_INTEGER). Integers beyond ±this are
// refused; other numbers must be finite IEEE 754 doubles.
const MaxSafeInteger = 1<<53 - 1

// Codes of non-canonical JSON.
const (
	CodeDuplicateKey     = "duplicate_key"
	CodeInvalidUTF8      = "invalid_utf8"
	CodeNumberOutOfRange = "number_out_of_range"
)

// CheckCanonical reports the first place where raw, which must already be
// syntactically valid JSON, is not canonical: a duplicate object key, a
// string that is not valid UTF-8 (raw bytes, or an escaped lone surrogate),
// or a number outside the range above. The error's pointer is prefix
// followed by the JSON pointer of the offending value.
func CheckCanonical(raw []byte, prefix string) *Error {
	s := canonScanner{b: raw, prefix: prefix}
	s.skipSpace()
	s.value()
	return s.err
}

// canonScanner checks a push's JSON, every mutation of every push: it
// allocates only to report a failure. The pointer of the value being
// scanned is kept as a stack of segments, made into a string by fail.
type canonScanner struct {
	b      []byte
	i      int
	prefix string
	err    *Error
	// shallow checks the keys of the top-level object only.
	shallow bool
	path    []segment
}

// segment is one step of a JSON pointer: an object key (the raw bytes of a
// key without escapes, or its decoded value) or an array index.
type segment struct {
	key   []byte
	index int // -1 for a key
}

// smallObject is how many keys an object may have before duplicates are
// looked up in a map instead of by comparing with every earlier key.
const smallObject = 16

func (s *canonScanner) fail(code, format string, args ...any) {
	if s.err == nil {
		ptr := s.prefix
		for _, seg := range s.path {
			if seg.index >= 0 {
				ptr += "/" + strconv.Itoa(seg.index)
			} else {
				ptr += "/" + escapePointer(string(seg.key))
			}
		}
		s.err = Errorf(KindInvalid, code, ptr, format, args...)
	}
	s.i = len(s.b) // stop scanning
}

func (s *canonScanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one value at s.i, whose pointer is s.path.
func (s *canonScanner) value() {
	if s.i >= len(s.b) {
		return
	}
	if s.shallow && len(s.path) > 0 {
		s.skip()
		return
	}
	switch c := s.b[s.i]; {
	case c == '{':
		s.i++
		var small [smallObject][]byte
		keys := small[:0]
		var seen map[string]struct{}
		for {
			s.skipSpace()
			if s.i >= len(s.b) || s.b[s.i] == '}' {
				s.i++
				return
			}
			if s.b[s.i] == ',' {
				s.i++
				s.skipSpace()
			}
			key, ok := s.str()
			if !ok {
				return
			}
			s.path = append(s.path, segment{key: key, index: -1})
			dup := false
			if seen == nil && len(keys) < smallObject {
				for _, k := range keys {
					if dup = bytes.Equal(k, key); dup {
						break
					}
				}
				keys = append(keys, key)
			} else {
				if seen == nil {
					seen = make(map[string]struct{}, 2*smallObject)
					for _, k := range keys {
						seen[string(k)] = struct{}{}
					}
				}
				_, dup = seen[string(key)]
				seen[string(key)] = struct{}{}
			}
			if dup {
				s.fail(CodeDuplicateKey, "key %q appears twice in the same object", key)
				return
			}
			s.skipSpace()
			s.i++ // ':'
			s.skipSpace()
			s.value()
			s.path = s.path[:len(s.path)-1]
		}
	case c == '[':
		s.i++
		for n := 0; ; n++ {
			s.skipSpace()
			if s.i >= len(s.b) || s.b[s.i] == ']' {
				s.i++
				return
			}
			if s.b[s.i] == ',' {
				s.i++
				s.skipSpace()
			}
			s.path = append(s.path, segment{index: n})
			s.value()
			s.path = s.path[:len(s.path)-1]
		}
	case c == '"':
		s.str()
	case c == '-' || (c >= '0' && c <= '9'):
		s.number()
	default: // true, false, null
		for s.i < len(s.b) && s.b[s.i] >= 'a' && s.b[s.i] <= 'z' {
			s.i++
		}
	}
}

// skip moves past one value without checking it.
func (s *canonScanner) skip() {
	depth := 0
	for ; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '"':
			for s.i++; s.i < len(s.b) && s.b[s.i] != '"'; s.i++ {
				if s.b[s.i] == '\\' {
					s.i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return
			}
			if depth--; depth == 0 {
				s.i++
				return
			}
		case ',':
			if depth == 0 {
				return
			}
		}
	}
}

// str scans a string at s.i and returns its decoded value: the input's
// bytes when it has no escapes (no copy), a new slice when it has.
func (s *canonScanner) str() ([]byte, bool) {
	s.i++ // opening quote
	start := s.i
	plain := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			break
		}
		if c == '\\' {
			plain = false
			s.i += 2
			continue
		}
		if c >= utf8.RuneSelf {
			plain = false
		}
		s.i++
	}
	body := s.b[start:min(s.i, len(s.b))]
	s.i++ // closing quote
	if plain {
		return body, true
	}
	if !utf8.Valid(body) {
		s.fail(CodeInvalidUTF8, "text is not valid UTF-8")
		return nil, false
	}
	if bytes.IndexByte(body, '\\') < 0 {
		return body, true
	}
	// Escapes: \uD800-\uDFFF must come as high-low pairs.
	for j := 0; j < len(body); j++ {
		if body[j] != '\\' {
			continue
		}
		j++ // the escaped character
		if j >= len(body) || body[j] != 'u' {
			continue
		}
		r := hex4(body[j+1:])
		j += 4 // the last hex digit
		if !utf16.IsSurrogate(r) {
			continue
		}
		lo := rune(-1)
		if r < 0xDC00 && j+6 < len(body) && body[j+1] == '\\' && body[j+2] == 'u' {
			lo = hex4(body[j+3:])
		}
		if utf16.DecodeRune(r, lo) == utf8.RuneError {
			s.fail(CodeInvalidUTF8, "text holds an unpaired UTF-16 surrogate (\\u%04x)", r)
			return nil, false
		}
		j += 6
	}
	var v string
	if err := json.Unmarshal(s.b[start-1:s.i], &v); err != nil {
		s.fail(CodeInvalidUTF8, "text is not a valid JSON string")
		return nil, false
	}
	return []byte(v), true
}

func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	if err != nil {
		return -1
	}
	return rune(n)
}

// number scans a number at s.i and checks its range.
func (s *canonScanner) number() {
	start := s.i
	integer := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '.' || c == 'e' || c == 'E' {
			integer = false
		} else if !(c == '-' || c == '+' || (c >= '0' && c <= '9')) {
			break
		}
		s.i++
	}
	if integer && s.i-start <= 15 {
		return // 15 digits are always within ±MaxSafeInteger (16 digits)
	}
	text := string(s.b[start:s.i])
	if integer {
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || n > MaxSafeInteger || n < -MaxSafeInteger {
			s.fail(CodeNumberOutOfRange, "integer %s is outside ±%d, the range every client holds exactly", clip(text), int64(MaxSafeInteger))
		}
		return
	}
	if _, err := strconv.ParseFloat(text, 64); errors.Is(err, strconv.ErrRange) {
		s.fail(CodeNumberOutOfRange, "number %s is outside the range of a 64-bit float", clip(text))
	}
}

func clip(s string) string {
	if len(s) > 24 {
		return fmt.Sprintf("%s…(%d digits)", s[:20], len(s))
	}
	return s
}
