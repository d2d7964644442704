package sqlite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/sync/feed"
)

// metaColumns are fields and feed columns: as this store writes them, and
// as it must still read whatever else is valid (older rows, hand edits):
// escapes, spaces, other member orders, unknown members, nulls.
var metaColumns = []string{
	`null`, `{}`, ` {} `,
	`{"text":{"v":3,"d":"phone-1"},"customer_id":{"v":1,"d":"phone-1"}}`,
	`{"a":{"v":1},"b":{"v":-2,"d":"x"},"":{"v":0}}`,
	`{"user:u-1":{"s":812},"org:o":{"s":812,"r":true},"pub":{"s":5,"r":false}}`,
	`{"a\u00e9":{"v":1,"d":"d\"q"}}`, `{"a":{"d":"x","v":2}}`, `{"a":{"v":2,"x":1}}`, `{"A":{"V":2}}`,
	`{"a":{"v":1},"a":{"v":2}}`, `{"a":{"v":1,"v":2}}`, `{"a":{"v":1.5}}`, `{"a":{"v":1e3}}`, `{"a":{"v":01}}`,
	`{"a":{"v":99999999999999999999}}`, `{"a":{"v":-0}}`, `{"a":{"v":1,"d":""}}`, `{"a":{"v":1,"d":null}}`,
	`{"a":{"s":1,"r":"yes"}}`, `{"a":{"v":1,"d":true}}`, `{"a":null}`, `{"a":{}}`, `{ "a" : { "s" : 7 } }`,
	`{"a":{"v":1}`, `{"a":{"v":1}}x`, `[]`, `{"a":[1]}`, `{"a\u2028<>&":{"s":1}}`, "{\"\xff\":{\"s\":1}}", ``,
}

// TestMetaDecodeAsJSON: the fast decoders answer exactly what encoding/json
// answers (value, or an error where it errs), on every column above.
func TestMetaDecodeAsJSON(t *testing.T) {
	t.Parallel()
	for _, raw := range metaColumns {
		checkDecodeAsJSON(t, []byte(raw))
	}
}

func checkDecodeAsJSON(t *testing.T, raw []byte) {
	t.Helper()
	var f1, f2 map[string]engine.FieldMeta
	e1, e2 := decodeFields(raw, &f1), json.Unmarshal(raw, &f2)
	if (e1 == nil) != (e2 == nil) || !reflect.DeepEqual(f1, f2) {
		t.Errorf("fields %q: got %v (%v), encoding/json %v (%v)", raw, f1, e1, f2, e2)
	}
	var p1, p2 map[string]feed.Pos
	e1, e2 = decodeFeed(raw, &p1), json.Unmarshal(raw, &p2)
	if (e1 == nil) != (e2 == nil) || !reflect.DeepEqual(p1, p2) {
		t.Errorf("feed %q: got %v (%v), encoding/json %v (%v)", raw, p1, e1, p2, e2)
	}
}

// TestMetaEncodeAsJSON: the fast encoders write json.Marshal's bytes, and
// the fast decoders read them back to the same maps.
func TestMetaEncodeAsJSON(t *testing.T) {
	t.Parallel()
	keys := []string{"text", "customer_id", "", "user:u-1", "a\"b", `back\slash`, "<html>&", "é", "\u2028", "\x01", "\xff"}
	for n := 0; n <= len(keys); n++ {
		fields := map[string]engine.FieldMeta{}
		pos := map[string]feed.Pos{}
		for i, k := range keys[:n] {
			dev := []string{"", "phone-1", keys[(i+3)%len(keys)]}[i%3]
			fields[k] = engine.FieldMeta{Version: int64(i*7 - 3), Device: dev}
			pos[k] = feed.Pos{Seq: int64(i) << 40, Revoked: i%2 == 1}
		}
		if n == 0 {
			fields, pos = nil, nil // json.Marshal writes null
		}
		got, _ := encodeFields(fields)
		want, _ := json.Marshal(fields)
		if !bytes.Equal(got, want) {
			t.Errorf("fields: got %s, json.Marshal %s", got, want)
		}
		checkDecodeAsJSON(t, got)
		got, _ = encodeFeed(pos)
		want, _ = json.Marshal(pos)
		if !bytes.Equal(got, want) {
			t.Errorf("feed: got %s, json.Marshal %s", got, want)
		}
		checkDecodeAsJSON(t, got)
	}
}

// FuzzMetaDecode: go test ./sqlite -run '^$' -fuzz FuzzMetaDecode (the
// seeds run with the tests).
func FuzzMetaDecode(f *testing.F) {
	for _, raw := range metaColumns {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkDecodeAsJSON(t, raw) })
}

// BenchmarkMetaColumns: a note's fields and feed columns (three fields,
// three scopes) through encoding/json and through meta.go, in one run.
func BenchmarkMetaColumns(b *testing.B) {
	fields := map[string]engine.FieldMeta{}
	for _, k := range []string{"customer_id", "created_at", "text"} {
		fields[k] = engine.FieldMeta{Version: 1, Device: "dev-0"}
	}
	pos := map[string]feed.Pos{"user:rep-1": {Seq: 123456}, "cust:c-001": {Seq: 123456}, "org:bench": {Seq: 123456}}
	fraw, _ := json.Marshal(fields)
	praw, _ := json.Marshal(pos)
	for _, v := range []struct {
		name      string
		encFields func(map[string]engine.FieldMeta) ([]byte, error)
		encFeed   func(map[string]feed.Pos) ([]byte, error)
		decFields func([]byte, *map[string]engine.FieldMeta) error
		decFeed   func([]byte, *map[string]feed.Pos) error
	}{
		{"encoding-json", func(m map[string]engine.FieldMeta) ([]byte, error) { return json.Marshal(m) },
			func(m map[string]feed.Pos) ([]byte, error) { return json.Marshal(m) },
			func(b []byte, m *map[string]engine.FieldMeta) error { return json.Unmarshal(b, m) },
			func(b []byte, m *map[string]feed.Pos) error { return json.Unmarshal(b, m) }},
		{"meta.go", encodeFields, encodeFeed, decodeFields, decodeFeed},
	} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				var f map[string]engine.FieldMeta
				var p map[string]feed.Pos
				if _, err := v.encFields(fields); err != nil {
					b.Fatal(err)
				}
				if _, err := v.encFeed(pos); err != nil {
					b.Fatal(err)
				}
				if err := v.decFields(fraw, &f); err != nil || len(f) != 3 {
					b.Fatal(fmt.Sprint(f, err))
				}
				if err := v.decFeed(praw, &p); err != nil || len(p) != 3 {
					b.Fatal(fmt.Sprint(p, err))
				}
			}
		})
	}
}
