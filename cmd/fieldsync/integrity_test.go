package main

// Regression tests of issue 10 ("integrity under attack"), over HTTP on both
// stores: what a hostile or broken phone app sends must be refused per
// mutation, change nothing, and never poison a pull.

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestNonCanonicalJSONIsRefusedPerMutation(t *testing.T) {
	t.Parallel()
	for name, store := range map[string]accStore{"sqlite": onSQLite, "mongodb": onMongoDB} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testNonCanonicalJSON(t, store)
		})
	}
}

func testNonCanonicalJSON(t *testing.T, store accStore) {
	w := newAccWorld(t, withoutWorkflows(store))
	w.addUser("org-1", accUser{id: "u-rep1", roles: []string{"rep"}})
	createCustomer(t, w.ts.URL, w.operator("org-1"), "c-1", "u-rep1")
	rep := w.token("org-1", "u-rep1")
	// Hand-written so that the duplicate keys, raw bytes and huge numbers
	// reach the server as a phone would send them.
	body := []byte(`{"device_id":"phone-1","mutations":[` +
		`{"mutation_id":"m-ok","collection":"customer_notes","id":"n-ok","op":"create","doc":{"customer_id":"c-1","text":"fine"}},` +
		`{"mutation_id":"m-dup","collection":"customer_notes","id":"n-dup","op":"create","doc":{"customer_id":"c-1","text":"a","text":"b"}},` +
		`{"mutation_id":"m-dupc","collection":"customer_notes","id":"n-dupc","op":"create","doc":{"customer_id":"c-1","customer_id":"c-2","text":"x"}},` +
		"{\"mutation_id\":\"m-utf\",\"collection\":\"customer_notes\",\"id\":\"n-utf\",\"op\":\"create\",\"doc\":{\"customer_id\":\"c-1\",\"text\":\"caf\xe9\"}}," +
		`{"mutation_id":"m-sur","collection":"customer_notes","id":"n-sur","op":"create","doc":{"customer_id":"c-1","text":"\ud800"}},` +
		`{"mutation_id":"m-big","collection":"customer_notes","id":"n-big","op":"create","doc":{"customer_id":"c-1","text":"t","rating":1e400}},` +
		`{"mutation_id":"m-int","collection":"customer_notes","id":"n-int","op":"update","base_version":1,"fields":{"text":"t","text":"u"}},` +
		`{"mutation_id":"m-type","collection":"customer_notes","id":42,"op":"create","doc":{"customer_id":"c-1","text":"t"}},` +
		`{"collection":"customer_notes"},` +
		`{"mutation_id":"m-ok2","collection":"customer_notes","id":"n-ok2","op":"create","doc":{"customer_id":"c-1","text":"also fine"}}` +
		`]}`)
	want := []struct {
		status, code, pointer string
		index                 int // -1: no index (the mutation decoded)
	}{
		{"applied", "", "", -1},
		{"rejected", "duplicate_key", "/doc/text", 1},
		{"rejected", "duplicate_key", "/doc/customer_id", 2},
		{"rejected", "invalid_utf8", "/doc/text", 3},
		{"rejected", "invalid_utf8", "/doc/text", 4},
		{"rejected", "number_out_of_range", "/doc/rating", 5},
		{"rejected", "duplicate_key", "/fields/text", 6},
		{"rejected", "invalid_mutation", "/id", 7},
		{"rejected", "invalid_mutation", "/mutation_id", -1},
		{"applied", "", "", -1},
	}
	for attempt := range 2 { // a retry earns the same answers and changes nothing
		st, raw := doRaw(t, "POST", w.ts.URL+"/v1/sync/push", rep, body)
		if st != 200 {
			t.Fatalf("attempt %d: push: %d %s", attempt, st, raw)
		}
		var r pushReply
		if err := json.Unmarshal(raw, &r); err != nil || len(r.Results) != len(want) {
			t.Fatalf("attempt %d: %d results (%v): %s", attempt, len(r.Results), err, raw)
		}
		for i, wt := range want {
			o := r.Results[i]
			if o.Status != wt.status {
				t.Errorf("attempt %d, mutation %d: %s, want %s (%+v)", attempt, i, o.Status, wt.status, o.Error)
				continue
			}
			if wt.code == "" {
				continue
			}
			if o.Error == nil || o.Error.Code != wt.code || o.Error.Pointer != wt.pointer {
				t.Errorf("attempt %d, mutation %d: error %+v, want %s at %s", attempt, i, o.Error, wt.code, wt.pointer)
			}
			if wt.index >= 0 && (o.Index == nil || *o.Index != wt.index) {
				t.Errorf("attempt %d, mutation %d: index %v, want %d", attempt, i, o.Index, wt.index)
			}
		}
	}
	// The rep's pull is valid UTF-8 and holds exactly the two good notes.
	st, raw := doRaw(t, "GET", w.ts.URL+"/v1/sync/pull?limit=100", rep, nil)
	if st != 200 || !utf8.Valid(raw) {
		t.Fatalf("pull: %d, valid UTF-8 %v", st, utf8.Valid(raw))
	}
	docs, _ := pullAll(t, w.ts.URL, rep, "", 100)
	for _, id := range []string{"n-dup", "n-dupc", "n-utf", "n-sur", "n-big", "n-int"} {
		if _, ok := docs["customer_notes/"+id]; ok {
			t.Errorf("refused note %s was stored", id)
		}
	}
	for _, id := range []string{"n-ok", "n-ok2"} {
		if _, ok := docs["customer_notes/"+id]; !ok {
			t.Errorf("note %s, pushed beside the bad ones, is missing", id)
		}
	}
}

func TestPushEnvelopeThatIsNotJSONIsRefusedWhole(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	rep := ts.token(t, "org-1", "u-rep1")
	for _, c := range []struct{ body, code, pointer string }{
		{`{"device_id":"d","mutations":[`, "malformed_json", ""},
		{`{"device_id":"d","mutations":{}}`, "malformed_json", "/mutations"},
		{`{"device_id":"d","mutations":[],"device_id":"e"}`, "duplicate_key", "/device_id"},
	} {
		var e errorReply
		if st := do(t, "POST", ts.URL+"/v1/sync/push", rep, []byte(c.body), &e); st != 400 || e.Error.Code != c.code || e.Error.Pointer != c.pointer {
			t.Errorf("%s: %d %+v, want 400 %s at %q", c.body, st, e.Error, c.code, c.pointer)
		}
	}
}
