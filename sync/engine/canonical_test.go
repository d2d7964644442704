package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckCanonical(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, raw, code, pointer string
	}{
		{"plain object", `{"a":1,"b":"x","c":[1,2,{"d":null}],"e":true}`, "", ""},
		{"nested keys may repeat across objects", `{"a":{"x":1},"b":{"x":2}}`, "", ""},
		{"duplicate top-level key", `{"status":"confirmed","status":"draft"}`, CodeDuplicateKey, "/doc/status"},
		{"duplicate nested key", `{"lines":[{"qty":1},{"qty":2,"qty":3}]}`, CodeDuplicateKey, "/doc/lines/1/qty"},
		{"duplicate key spelled with an escape", `{"a":1,"\u0061":2}`, CodeDuplicateKey, "/doc/a"},
		{"key with slash and tilde", `{"a/b":1,"a/b":2}`, CodeDuplicateKey, "/doc/a~1b"},
		{"invalid UTF-8 in a value", "{\"text\":\"caf\xe9\"}", CodeInvalidUTF8, "/doc/text"},
		{"invalid UTF-8 in a key", "{\"caf\xe9\":1}", CodeInvalidUTF8, "/doc"},
		{"lone high surrogate", `{"text":"a\ud800b"}`, CodeInvalidUTF8, "/doc/text"},
		{"lone low surrogate", `{"text":"\udc00"}`, CodeInvalidUTF8, "/doc/text"},
		{"paired surrogates", `{"text":"\ud83d\ude00 ok"}`, "", ""},
		{"valid UTF-8", `{"text":"Zürich 東京 😀"}`, "", ""},
		{"escaped quote and backslash", `{"text":"say \"hi\" \\ \u00e9"}`, "", ""},
		{"huge exponent", `{"n":1e400}`, CodeNumberOutOfRange, "/doc/n"},
		{"huge negative exponent is zero", `{"n":1e-400}`, "", ""},
		{"max safe integer", `{"n":9007199254740991,"m":-9007199254740991}`, "", ""},
		{"integer past 2^53", `{"n":9007199254740992}`, CodeNumberOutOfRange, "/doc/n"},
		{"integer past int64", `{"n":[123456789012345678901234567890]}`, CodeNumberOutOfRange, "/doc/n/0"},
		{"decimal", `{"n":12.75,"m":-0.5e3}`, "", ""},
		{"15 and 16 digits", `{"n":-999999999999999,"m":1000000000000000,"o":-9007199254740991}`, "", ""},
	}
	// Objects past smallObject keys are checked with a map: a duplicate of a
	// key seen before and after the switch is found either way.
	many := func(n int, again string) string {
		raw := "{"
		for i := range n {
			raw += fmt.Sprintf(`"k%d":%d,`, i, i)
		}
		return raw + `"` + again + `":0}`
	}
	cases = append(cases,
		struct{ name, raw, code, pointer string }{"many keys", many(40, "other"), "", ""},
		struct{ name, raw, code, pointer string }{"many keys, duplicate of an early one", many(40, "k0"), CodeDuplicateKey, "/doc/k0"},
		struct{ name, raw, code, pointer string }{"many keys, duplicate of a late one", many(40, "k39"), CodeDuplicateKey, "/doc/k39"},
		struct{ name, raw, code, pointer string }{"duplicate as the 17th key", many(16, "k15"), CodeDuplicateKey, "/doc/k15"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := CheckCanonical([]byte(c.raw), "/doc")
			switch {
			case c.code == "" && err != nil:
				t.Fatalf("CheckCanonical(%s) = %v, want nil", c.raw, err)
			case c.code != "" && err == nil:
				t.Fatalf("CheckCanonical(%s) = nil, want %s", c.raw, c.code)
			case c.code != "" && (err.Code != c.code || err.Pointer != c.pointer):
				t.Fatalf("CheckCanonical(%s) = %s at %q, want %s at %q", c.raw, err.Code, err.Pointer, c.code, c.pointer)
			}
		})
	}
}

func TestPushRequestDecodesEachMutationOnItsOwn(t *testing.T) {
	t.Parallel()
	body := `{"device_id":"d1","mutations":[
		{"mutation_id":"m1","collection":"customer_notes","id":"n1","op":"create","doc":{"text":"ok"}},
		{"mutation_id":"m2","collection":"customer_notes","id":42,"op":"create","doc":{}},
		{"mutation_id":7},
		"not an object",
		{"mutation_id":"m5","collection":"orders","id":"o1","op":"create","doc":{"status":"draft","status":"confirmed"}}
	]}`
	var req PushRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(req.Mutations) != 5 {
		t.Fatalf("%d mutations, want 5", len(req.Mutations))
	}
	want := []struct {
		id, code, pointer string
	}{
		{"m1", "", ""},
		{"m2", CodeInvalidMutation, "/id"},
		{"", CodeInvalidMutation, "/mutation_id"},
		{"", CodeInvalidMutation, ""},
		{"m5", CodeDuplicateKey, "/doc/status"},
	}
	for i, w := range want {
		m := req.Mutations[i]
		if m.ID != w.id {
			t.Errorf("mutation %d: id %q, want %q", i, m.ID, w.id)
		}
		switch {
		case w.code == "" && m.bad != nil:
			t.Errorf("mutation %d: %v, want it decoded", i, m.bad)
		case w.code != "" && (m.bad == nil || m.bad.Code != w.code || m.bad.Pointer != w.pointer || m.index != i):
			t.Errorf("mutation %d: bad=%v index=%d, want %s at %q", i, m.bad, m.index, w.code, w.pointer)
		}
	}
}

func TestPushRequestRefusesADuplicatedEnvelopeKey(t *testing.T) {
	t.Parallel()
	var req PushRequest
	err := json.Unmarshal([]byte(`{"device_id":"a","mutations":[],"device_id":"b"}`), &req)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeDuplicateKey || e.Pointer != "/device_id" {
		t.Fatalf("err = %v, want duplicate_key at /device_id", err)
	}
}

// FuzzPushDecode feeds arbitrary bodies to the push decoder: it must never
// panic, and every mutation it accepts must be canonical and re-encode to
// JSON that a strict decoder reads back the same. Seeds are real requests
// (testdata/protocol of the command) plus the attacks of issue 10.
//
//	go test ./sync/engine -run '^$' -fuzz FuzzPushDecode -fuzztime 10m
func FuzzPushDecode(f *testing.F) {
	if b, err := os.ReadFile("../../app/testdata/protocol/v1/01-push.request.json"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		`{"device_id":"d","mutations":[{"mutation_id":"m","collection":"customer_notes","id":"n","op":"create","doc":{"customer_id":"c","text":"hi"}}]}`,
		`{"device_id":"d","mutations":[{"mutation_id":"m","collection":"orders","id":"o","op":"update","base_version":2,"fields":{"status":"submitted"}}]}`,
		`{"device_id":"d","mutations":[{"mutation_id":"m","id":42}]}`,
		`{"device_id":"d","mutations":[{"doc":{"a":1,"a":2}}]}`,
		"{\"device_id\":\"d\",\"mutations\":[{\"doc\":{\"t\":\"\xff\"}}]}",
		`{"device_id":"d","mutations":[{"doc":{"t":"\ud800","n":1e400}}]}`,
		`{"mutations":null}`, `[]`, `{`, `{"device_id":"d","device_id":"e"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req PushRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return
		}
		for i, m := range req.Mutations {
			if m.bad != nil {
				if m.bad.Code == "" || m.index != i || (m.bad.Pointer != "" && !strings.HasPrefix(m.bad.Pointer, "/")) {
					t.Fatalf("mutation %d: bad %+v index %d", i, m.bad, m.index)
				}
				continue
			}
			raw, err := json.Marshal((*mutationFields)(&m))
			if err != nil {
				t.Fatalf("mutation %d re-encodes with error %v", i, err)
			}
			if !utf8.Valid(raw) {
				t.Fatalf("mutation %d re-encodes to invalid UTF-8", i)
			}
			if e := CheckCanonical(raw, ""); e != nil {
				t.Fatalf("accepted mutation %d is not canonical once re-encoded: %v (%s)", i, e, raw)
			}
			if m.Doc != nil {
				if e := CheckCanonical(m.Doc, "/doc"); e != nil {
					t.Fatalf("accepted doc of mutation %d is not canonical: %v", i, e)
				}
			}
		}
	})
}
