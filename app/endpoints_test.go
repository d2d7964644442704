package app_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestEndpoints covers the operational endpoints, metrics after real
// traffic, and gzip.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	tok := ts.Token(t, "org-1", "u-1")
	ts.Customer(t, "org-1", "c-1", "u-1")
	var pr pushReply
	body := mustJSON(t, push("dev-1", note("n-1", "a"), note("n-2", "b"),
		map[string]any{"mutation_id": "bad", "collection": "nope", "id": "x", "op": "create", "doc": map[string]any{}}))
	if st := do(t, "POST", ts.URL+"/v1/sync/push", tok, body, &pr); st != 200 || len(pr.Results) != 3 {
		t.Fatalf("push: %d %+v", st, pr)
	}
	docs, _ := pullAll(t, ts.URL, tok, "", 100)
	if len(docs) != 3 {
		t.Fatalf("pulled %d docs, want the customer and its 2 notes", len(docs))
	}
	for _, bad := range []string{"not-a-token", ""} {
		if st := do(t, "GET", ts.URL+"/v1/sync/pull", bad, nil, nil); st != 401 {
			t.Fatalf("pull with token %q: %d, want 401", bad, st)
		}
	}

	for _, c := range []struct{ path, want string }{
		{"/healthz", `"ok"`},
		{"/readyz", `"ready"`},
		{"/version", `"protocol":1`},
		{"/.well-known/jwks.json", `"kty":"OKP"`},
		{"/v1/schemas", `"customer_notes"`},
		{"/metrics", `fieldsync_sync_push_mutations_total{outcome="applied"} 3`}, // the customer and 2 notes
		{"/metrics", `fieldsync_sync_push_mutations_total{outcome="rejected"} 1`},
		{"/metrics", `fieldsync_sync_pull_changes_total 3`},
		// The engine's store calls: one push of the customer, one of the notes.
		{"/metrics", `fieldsync_store_call_duration_seconds_count{call="push"} 2`},
		{"/metrics", `fieldsync_store_call_duration_seconds_bucket{call="pull"`},
		// The shared outbox: nothing pending (the notes notify no one).
		{"/metrics", `fieldsync_notifications_outbox{status="pending"} 0`},
		{"/metrics", `fieldsync_notifications_outbox{status="dead"} 0`},
		// The bad token and the missing one below.
		{"/metrics", `fieldsync_auth_failures_total{code="token_invalid"} 1`},
		{"/metrics", `fieldsync_auth_failures_total{code="unauthenticated"} 1`},
		{"/metrics", `fieldsync_http_requests_total{method="POST",route="/v1/sync/push",status="200"} 2`},
		{"/metrics", `fieldsync_http_request_duration_seconds_bucket{method="GET",route="/v1/sync/pull"`},
	} {
		resp, err := http.Get(ts.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(raw), c.want) {
			t.Errorf("GET %s: %d, body lacks %q:\n%s", c.path, resp.StatusCode, c.want, grepLines(string(raw), "fieldsync_"))
		}
	}

	// gzip when asked, identity when not.
	for _, enc := range []string{"gzip", ""} {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/sync/pull", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if enc != "" {
			req.Header.Set("Accept-Encoding", enc)
		}
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = resp.Body
		if got := resp.Header.Get("Content-Encoding"); got != enc {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q", enc, got)
		} else if enc == "gzip" {
			if r, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		var pr pullReply
		if err := json.NewDecoder(r).Decode(&pr); err != nil || len(pr.Changes) != 3 {
			t.Errorf("Accept-Encoding %q: decode %v, %d changes", enc, err, len(pr.Changes))
		}
		resp.Body.Close()
		if id := resp.Header.Get("X-Request-ID"); id == "" {
			t.Errorf("no X-Request-ID header")
		}
	}
}

// TestRequestLogs checks one structured line per request, with a request id,
// the organisation, the user and the error code, without the token; the
// path of an unmatched route; health checks at debug only.
func TestRequestLogs(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	ts := startServerLog(t, &logs)
	tok := ts.Token(t, "org-1", "u-1")
	do(t, "GET", ts.URL+"/v1/sync/pull", tok, nil, nil)
	do(t, "GET", ts.URL+"/v1/sync/pull?checkpoint=forged", tok, nil, nil)
	do(t, "GET", ts.URL+"/v1/no/such/route", "", nil, nil)
	do(t, "GET", ts.URL+"/healthz", "", nil, nil)
	ts.Stop()
	out := logs.String()
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "request" {
			continue
		}
		switch {
		case rec["route"] == "/v1/sync/pull" && rec["status"] == float64(200) && rec["request_id"] != "" &&
			rec["org"] == "org-1" && rec["user"] == "u-1" && rec["code"] == nil:
			seen["pull"] = true
		case rec["route"] == "/v1/sync/pull" && rec["status"] == float64(400) && rec["code"] == "bad_checkpoint" &&
			rec["org"] == "org-1" && rec["user"] == "u-1":
			seen["refused pull"] = true
		case rec["route"] == "unmatched" && rec["path"] == "/v1/no/such/route" && rec["status"] == float64(404):
			seen["unmatched"] = true
		case rec["route"] == "/healthz":
			t.Errorf("a health check logged at info: %s", line)
		}
	}
	for _, want := range []string{"pull", "refused pull", "unmatched"} {
		if !seen[want] {
			t.Errorf("no JSON request line for the %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, tok) || strings.Contains(out, tok[strings.LastIndex(tok, ".")+1:]) {
		t.Errorf("the access token reached the log")
	}
}

// grepLines keeps the lines of s that contain sub and are not comments.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") && !strings.Contains(l, "_bucket") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
