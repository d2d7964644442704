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
	s.value("")
	return s.err
}

type canonScanner struct {
	b      []byte
	i      int
	prefix string
	err    *Error
	// shallow checks the keys of the top-level object only.
	shallow bool
}

func (s *canonScanner) fail(code, ptr, format string, args ...any) {
	if s.err == nil {
		s.err = Errorf(KindInvalid, code, s.prefix+ptr, format, args...)
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

// value scans one value at s.i; ptr is its pointer.
func (s *canonScanner) value(ptr string) {
	if s.i >= len(s.b) {
		return
	}
	if s.shallow && ptr != "" {
		s.skip()
		return
	}
	switch c := s.b[s.i]; {
	case c == '{':
		s.i++
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
			key, ok := s.str(ptr)
			if !ok {
				return
			}
			kptr := ptr + "/" + escapePointer(key)
			if seen == nil {
				seen = make(map[string]struct{}, 8)
			}
			if _, dup := seen[key]; dup {
				s.fail(CodeDuplicateKey, kptr, "key %q appears twice in the same object", key)
				return
			}
			seen[key] = struct{}{}
			s.skipSpace()
			s.i++ // ':'
			s.skipSpace()
			s.value(kptr)
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
			s.value(ptr + "/" + strconv.Itoa(n))
		}
	case c == '"':
		s.str(ptr)
	case c == '-' || (c >= '0' && c <= '9'):
		s.number(ptr)
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

// str scans a string at s.i and returns its decoded value.
func (s *canonScanner) str(ptr string) (string, bool) {
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
		return string(body), true
	}
	if !utf8.Valid(body) {
		s.fail(CodeInvalidUTF8, ptr, "text is not valid UTF-8")
		return "", false
	}
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), true
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
			s.fail(CodeInvalidUTF8, ptr, "text holds an unpaired UTF-16 surrogate (\\u%04x)", r)
			return "", false
		}
		j += 6
	}
	var v string
	if err := json.Unmarshal(s.b[start-1:s.i], &v); err != nil {
		s.fail(CodeInvalidUTF8, ptr, "text is not a valid JSON string")
		return "", false
	}
	return v, true
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
func (s *canonScanner) number(ptr string) {
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
	text := string(s.b[start:s.i])
	if integer {
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || n > MaxSafeInteger || n < -MaxSafeInteger {
			s.fail(CodeNumberOutOfRange, ptr, "integer %s is outside ±%d, the range every client holds exactly", clip(text), int64(MaxSafeInteger))
		}
		return
	}
	if _, err := strconv.ParseFloat(text, 64); errors.Is(err, strconv.ErrRange) {
		s.fail(CodeNumberOutOfRange, ptr, "number %s is outside the range of a 64-bit float", clip(text))
	}
}

func clip(s string) string {
	if len(s) > 24 {
		return fmt.Sprintf("%s…(%d digits)", s[:20], len(s))
	}
	return s
}
