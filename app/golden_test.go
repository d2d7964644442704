package app_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestGoldenProtocolV1 replays recorded protocol-1 payloads: an app version
// in the field sends exactly these bytes and expects exactly these replies,
// so a change that breaks them breaks phones. Add a v2 folder beside v1 for a
// new protocol version; never edit v1.
func TestGoldenProtocolV1(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "protocol", "v1")
	ts := startServer(t, "", nil)
	tok := ts.Token(t, "org-golden", "u-golden")
	ts.Customer(t, "org-golden", "c-42", "u-golden")     // the customer the recorded phone works for
	_, afterCustomer := pullAll(t, ts.URL, tok, "", 100) // the recorded phone had it already

	req := readFile(t, dir, "01-push.request.json")
	var got any
	if st := do(t, "POST", ts.URL+"/v1/sync/push", tok, req, &got); st != 200 {
		t.Fatalf("push: status %d", st)
	}
	assertJSONEqual(t, "push reply", got, readJSON(t, dir, "01-push.reply.json"))
	// A retry of the same bytes gets the recorded answers, marked replayed
	// and without documents (exactly-once; docs/protocol.md).
	got = nil
	do(t, "POST", ts.URL+"/v1/sync/push", tok, req, &got)
	assertJSONEqual(t, "retried push reply", got, readJSON(t, dir, "03-push.retry.reply.json"))

	var pull map[string]any
	if st := do(t, "GET", ts.URL+"/v1/sync/pull?checkpoint="+url.QueryEscape(afterCustomer), tok, nil, &pull); st != 200 {
		t.Fatalf("pull: status %d", st)
	}
	if cp, _ := pull["checkpoint"].(string); cp == "" {
		t.Fatalf("pull reply without checkpoint")
	}
	pull["checkpoint"] = "<checkpoint>"
	assertJSONEqual(t, "pull reply", pull, readJSON(t, dir, "02-pull.reply.json"))
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readJSON(t *testing.T, dir, name string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(readFile(t, dir, name), &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func assertJSONEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		if !bytes.Equal(g, w) {
			t.Errorf("%s differs from the golden file:\ngot  %s\nwant %s", what, g, w)
		}
	}
}
