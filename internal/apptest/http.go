package apptest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Do sends a request and decodes a JSON reply into out (when not nil).
func Do(t testing.TB, method, url, token string, body []byte, out any) int {
	t.Helper()
	st, raw := DoRaw(t, method, url, token, body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, raw, err)
		}
	}
	return st
}

// DoRaw sends a request and returns the status and the raw reply.
func DoRaw(t testing.TB, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// DecodeInto decodes raw into ok for a success status, into fail otherwise.
func DecodeInto(t testing.TB, raw []byte, st int, ok, fail any) {
	t.Helper()
	target := ok
	if st >= 300 {
		target = fail
	}
	if err := json.Unmarshal(raw, target); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

// MustJSON encodes v.
func MustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type PushReply struct {
	Results []engine.Outcome `json:"results"`
}

type PullReply struct {
	Changes []struct {
		Op         string          `json:"op"`
		Collection string          `json:"collection"`
		ID         string          `json:"id"`
		Version    int64           `json:"version"`
		Doc        json.RawMessage `json:"doc"`
	} `json:"changes"`
	Checkpoint string `json:"checkpoint"`
	HasMore    bool   `json:"has_more"`
}

type ErrorReply struct {
	Error engine.ErrorBody `json:"error"`
}

// PullAll pulls every page for token from checkpoint cp.
func PullAll(t testing.TB, base, token, cp string, limit int) (map[string]json.RawMessage, string) {
	t.Helper()
	docs := map[string]json.RawMessage{}
	for {
		var r PullReply
		u := base + "/v1/sync/pull?limit=" + strconv.Itoa(limit) + "&checkpoint=" + url.QueryEscape(cp)
		if st := Do(t, "GET", u, token, nil, &r); st != 200 {
			t.Fatalf("pull: status %d", st)
		}
		for _, c := range r.Changes {
			key := c.Collection + "/" + c.ID
			if c.Op == "put" {
				docs[key] = c.Doc
			} else {
				delete(docs, key)
			}
		}
		cp = r.Checkpoint
		if !r.HasMore {
			return docs, cp
		}
	}
}

// Note is the create mutation of note id on customer c-1.
func Note(id, text string) map[string]any {
	return map[string]any{"mutation_id": "m-" + id, "collection": "customer_notes", "id": id, "op": "create",
		"doc": map[string]any{"customer_id": "c-1", "text": text, "created_at": "2026-11-29T09:00:00Z"}}
}

// Push is a push request of device with muts.
func Push(device string, muts ...map[string]any) map[string]any {
	return map[string]any{"device_id": device, "mutations": muts}
}

// WaitFor polls cond until it holds, failing the test when neither timeout
// nor the test's patience (internal/patience) suffice: timeout says how long the
// condition takes on a quiet machine, and a busy one (two `go test ./...`
// on 2 cores) must make the test slower, not red.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(max(timeout, patience.Of(t)))
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WebhookReply is a webhook subscription as the admin API shows it.
type WebhookReply struct {
	ID             string `json:"id"`
	Secret         string `json:"secret"`
	Disabled       bool   `json:"disabled"`
	DisabledReason string `json:"disabled_reason"`
}
