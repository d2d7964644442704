package app_test

// Regression tests of issue 10 ("integrity under attack"), over HTTP on both
// stores: what a hostile or broken phone app sends must be refused per
// mutation, change nothing, and never poison a pull.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/sync/engine"
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
	w.AddUser("org-1", accUser{ID: "u-rep1", Roles: []string{"rep"}})
	createCustomer(t, w.Server.URL, w.Operator("org-1"), "c-1", "u-rep1")
	rep := w.Token("org-1", "u-rep1")
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
		st, raw := doRaw(t, "POST", w.Server.URL+"/v1/sync/push", rep, body)
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
	st, raw := doRaw(t, "GET", w.Server.URL+"/v1/sync/pull?limit=100", rep, nil)
	if st != 200 || !utf8.Valid(raw) {
		t.Fatalf("pull: %d, valid UTF-8 %v", st, utf8.Valid(raw))
	}
	docs, _ := pullAll(t, w.Server.URL, rep, "", 100)
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

// TestAdaptersRefuseNonCanonicalJSON pushes invalid UTF-8 (a raw byte and a
// lone surrogate) and a number no client can hold through the WatermelonDB
// and RxDB endpoints: the engine checks every device mutation, however it
// arrived, so none is stored and no pull is poisoned.
func TestAdaptersRefuseNonCanonicalJSON(t *testing.T) {
	t.Parallel()
	for name, store := range map[string]accStore{"sqlite": onSQLite, "mongodb": onMongoDB} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testAdaptersNonCanonical(t, store)
		})
	}
}

func testAdaptersNonCanonical(t *testing.T, store accStore) {
	w := newAccWorld(t, withoutWorkflows(store))
	w.AddUser("org-1", accUser{ID: "u-rep1", Roles: []string{"rep"}})
	createCustomer(t, w.Server.URL, w.Operator("org-1"), "c-1", "u-rep1")
	rep := w.Token("org-1", "u-rep1")
	bad := map[string]string{ // note id -> its text, as JSON source
		"n-byte": "\"caf\xe9\"", "n-sur": `"\ud800"`, "n-big": `1e400`,
	}
	// WatermelonDB: each refused row is named with its code, the good one
	// is applied.
	var rows []string
	for id, text := range bad {
		rows = append(rows, `{"id":"wm-`+id+`","customer_id":"c-1","text":`+text+`,"_status":"created","_changed":""}`)
	}
	rows = append(rows, `{"id":"wm-ok","customer_id":"c-1","text":"fine","_status":"created","_changed":""}`)
	body := `{"changes":{"customer_notes":{"created":[` + strings.Join(rows, ",") + `],"updated":[],"deleted":[]}},"lastPulledAt":null}`
	var wm struct {
		Rejected []struct{ Table, ID, Code string } `json:"rejected"`
	}
	st, raw := doRaw(t, "POST", w.Server.URL+"/v1/adapters/watermelondb/sync?device_id=phone-1", rep, []byte(body))
	if st != 200 || json.Unmarshal(raw, &wm) != nil {
		t.Fatalf("watermelondb push: %d %s", st, raw)
	}
	codes := map[string]string{}
	for _, r := range wm.Rejected {
		codes[r.ID] = r.Code
	}
	want := map[string]string{"wm-n-byte": "invalid_utf8", "wm-n-sur": "invalid_utf8", "wm-n-big": "number_out_of_range"}
	if !maps.Equal(codes, want) {
		t.Errorf("watermelondb refusals %v, want %v", codes, want)
	}
	// RxDB: a refused row comes back among the conflicts; nothing stored.
	var docs []string
	for id, text := range bad {
		docs = append(docs, `{"newDocumentState":{"id":"rx-`+id+`","customer_id":"c-1","text":`+text+`,"_deleted":false}}`)
	}
	req, err := http.NewRequest("POST", w.Server.URL+"/v1/adapters/rxdb/customer_notes/1/push", strings.NewReader("["+strings.Join(docs, ",")+"]"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+rep)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Device-Id", "phone-2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("rxdb push: %d %s", resp.StatusCode, raw)
	}
	// Every pull of the rep is valid UTF-8 and holds only the good note.
	for _, u := range []string{"/v1/sync/pull?limit=100", "/v1/adapters/watermelondb/sync?device_id=phone-1",
		"/v1/adapters/rxdb/customer_notes/1/pull?limit=100"} {
		st, raw := doRaw(t, "GET", w.Server.URL+u, rep, nil)
		if st != 200 || !utf8.Valid(raw) {
			t.Errorf("%s: %d, valid UTF-8 %v", u, st, utf8.Valid(raw))
		}
	}
	stored, _ := pullAll(t, w.Server.URL, rep, "", 100)
	for id := range bad {
		for _, prefix := range []string{"wm-", "rx-"} {
			if _, ok := stored["customer_notes/"+prefix+id]; ok {
				t.Errorf("refused note %s%s was stored", prefix, id)
			}
		}
	}
	if _, ok := stored["customer_notes/wm-ok"]; !ok {
		t.Error("the good note pushed beside them is missing")
	}
}

func TestPushEnvelopeThatIsNotJSONIsRefusedWhole(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", nil)
	rep := ts.Token(t, "org-1", "u-rep1")
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

// loseNextPush is a transport that serves the next push and then loses its
// reply, once: the push is committed, the device does not learn it.
type loseNextPush struct {
	mu   sync.Mutex
	lose bool
}

func (l *loseNextPush) arm() { l.mu.Lock(); l.lose = true; l.mu.Unlock() }

func (l *loseNextPush) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	l.mu.Lock()
	lose := l.lose && err == nil && strings.HasSuffix(req.URL.Path, "/sync/push")
	if lose {
		l.lose = false
	}
	l.mu.Unlock()
	if lose {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, client.ErrReplyLost
	}
	return resp, err
}

// TestReplayedOutcomeNeverResurrects: a phone's reply to a merged update is
// lost; before it retries, the phone pulls the document's delete (or its
// eviction, the customer having moved to another rep). The retry is
// answered from the record, and the phone must end without the document:
// the recorded merge carried the old body, which the phone would have put
// back for good (and, evicted, been handed data it may no longer read).
func TestReplayedOutcomeNeverResurrects(t *testing.T) {
	t.Parallel()
	for name, store := range map[string]accStore{"sqlite": onSQLite, "mongodb": onMongoDB} {
		for _, ending := range []string{"delete", "evict"} {
			t.Run(name+"/"+ending, func(t *testing.T) {
				t.Parallel()
				testReplayNeverResurrects(t, store, ending)
			})
		}
	}
}

func testReplayNeverResurrects(t *testing.T, store accStore, ending string) {
	w := newAccWorld(t, withoutWorkflows(store))
	for _, u := range []string{"rep-a", "rep-b"} {
		w.AddUser("org-1", accUser{ID: u, Roles: []string{"rep"}})
	}
	w.AddUser("org-1", accUser{ID: "adm", Roles: []string{"admin"}})
	createCustomer(t, w.Server.URL, w.Operator("org-1"), "c-1", "rep-a")
	lossy := &loseNextPush{}
	var mu sync.Mutex
	var outcomes []engine.Outcome
	c, err := client.New(client.Config{
		BaseURL: w.Server.URL, Token: client.StaticToken(w.Token("org-1", "rep-a")), DeviceID: "phone-a",
		Store:      client.NewFileStore(filepath.Join(t.TempDir(), "state.json")),
		HTTPClient: &http.Client{Timeout: patience.Of(t), Transport: lossy},
		// No retry within a call: the test retries by hand, after the pull.
		Sleep:            func(context.Context, time.Duration) error { return errors.New("no retries here") },
		MutationIDPrefix: "phone-a",
		OnOutcome:        func(_ engine.Mutation, o engine.Outcome) { mu.Lock(); outcomes = append(outcomes, o); mu.Unlock() },
	})
	must(t, "client", err)
	ctx := t.Context()
	must(t, "create", c.Create("customer_notes", "n-1", map[string]any{"customer_id": "c-1", "text": "first"}))
	if _, err := c.Sync(ctx); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	// The admin's console tags the note (version 2); the phone, still on
	// version 1, edits the text: a merge whose answer carries the body.
	admin := w.Token("org-1", "adm", "admin")
	if o := w.Push(admin, "console", []map[string]any{mUpdate("adm-1", "customer_notes", "n-1", 1, map[string]any{"tags": []string{"vip"}})}); o[0].Status != "applied" {
		t.Fatalf("admin tag: %+v", o[0])
	}
	must(t, "edit", c.Update("customer_notes", "n-1", map[string]any{"text": "second"}))
	lossy.arm()
	if _, err := c.Push(ctx); err == nil {
		t.Fatal("the push whose reply is lost reported success")
	}
	// The document goes away for this phone.
	switch ending {
	case "delete":
		if o := w.Push(admin, "console", []map[string]any{mDelete("adm-2", "customer_notes", "n-1", 3)}); o[0].Status != "applied" {
			t.Fatalf("admin delete: %+v", o[0])
		}
	case "evict":
		w.Admin("org-1", "POST", "/customers/c-1/assign", map[string]any{"reps": []string{"rep-b"}}, 200)
	}
	if _, err := c.Pull(ctx); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if _, ok := c.ServerState()["customer_notes"]["n-1"]; ok {
		t.Fatalf("after the %s was pulled the phone still holds n-1", ending)
	}
	// The retry is answered from the record: no body, whatever happened.
	mu.Lock()
	outcomes = nil
	mu.Unlock()
	rep, err := c.Push(ctx)
	if err != nil || rep.Sent != 1 {
		t.Fatalf("retry: %+v %v", rep, err)
	}
	mu.Lock()
	got := slices.Clone(outcomes)
	mu.Unlock()
	if len(got) != 1 || !got[0].Replayed || got[0].Status != "merged" || got[0].Doc != nil || hasKept(got[0].Conflicts) {
		t.Fatalf("retry answered %+v, want one replayed merge without doc or kept values", got)
	}
	if _, err := c.Sync(ctx); err != nil {
		t.Fatalf("sync after retry: %v", err)
	}
	if doc, ok := c.Get("customer_notes", "n-1"); ok {
		t.Fatalf("after the retry the phone holds n-1 again: %s", doc)
	}
	if _, ok := c.ServerState()["customer_notes"]["n-1"]; ok {
		t.Fatalf("after the retry the phone's server copy holds n-1 again")
	}
}

func hasKept(cs []engine.Conflict) bool {
	return slices.ContainsFunc(cs, func(c engine.Conflict) bool { return c.Kept != nil })
}

// TestSignInIntegrity: a refresh token forged from a session id is
// refresh_token_invalid and revokes nothing; a device id that the admin API
// could not name is refused at sign-in. Both stores.
func TestSignInIntegrity(t *testing.T) {
	t.Parallel()
	for name, store := range map[string]accStore{"sqlite": onSQLite, "mongodb": onMongoDB} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newAccWorld(t, store)
			w.AddUser("acme", accUser{ID: "ann", Roles: []string{"rep"}, Password: true})
			for _, dev := range []string{"a/b", "phone 1", ""} {
				st, _, e := login(t, w.Server, "ann@acme.example", testPassword, dev)
				if st != 400 || e.Error.Code != "invalid_request" || e.Error.Pointer != "/device_id" {
					t.Errorf("sign-in with device id %q: %d %+v, want 400 invalid_request at /device_id", dev, st, e.Error)
				}
			}
			st, g, e := login(t, w.Server, "ann@acme.example", testPassword, "phone-1")
			if st != 200 {
				t.Fatalf("sign-in: %d %+v", st, e.Error)
			}
			session := strings.Split(g.RefreshToken, ".")[0]
			for _, forged := range []string{session + ".1.AAAA", session + ".1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"} {
				if st, _, e := refresh(t, w.Server, forged); st != 401 || e.Error.Code != "refresh_token_invalid" {
					t.Errorf("forged refresh token: %d %+v, want 401 refresh_token_invalid", st, e.Error)
				}
			}
			if st, _, e := refresh(t, w.Server, g.RefreshToken); st != 200 {
				t.Errorf("the owner's refresh after the forgeries: %d %+v, want 200 (the session lives)", st, e.Error)
			}
		})
	}
}

// TestDisabledUserRefusedEverywhere: once disabled, a user's still-valid
// access token is refused on every authenticated route with the same
// answer (403 user_disabled), devices and notification settings included.
func TestDisabledUserRefusedEverywhere(t *testing.T) {
	t.Parallel()
	for name, store := range map[string]accStore{"sqlite": onSQLite, "mongodb": onMongoDB} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newAccWorld(t, store)
			w.AddUser("acme", accUser{ID: "ann", Roles: []string{"rep"}, Password: true})
			st, g, e := login(t, w.Server, "ann@acme.example", testPassword, "phone-1")
			if st != 200 {
				t.Fatalf("sign-in: %d %+v", st, e.Error)
			}
			w.Admin("acme", "POST", "/users/ann/disable", nil, 200)
			routes := []struct{ method, path, body string }{
				{"POST", "/v1/devices", `{"device_id":"phone-1","platform":"android","token":"fcm-token-1"}`},
				{"GET", "/v1/devices", ""},
				{"DELETE", "/v1/devices/phone-1", ""},
				{"GET", "/v1/me/notifications", ""},
				{"PUT", "/v1/me/notifications", `{"muted":["follow_up"]}`},
				{"GET", "/v1/me", ""},
				{"POST", "/v1/sync/push", `{"device_id":"phone-1","mutations":[]}`},
				{"GET", "/v1/sync/pull", ""},
				{"GET", "/v1/followups", ""},
				{"GET", "/v1/kpis", ""},
			}
			for _, r := range routes {
				var body []byte
				if r.body != "" {
					body = []byte(r.body)
				}
				var e errorReply
				if st := do(t, r.method, w.Server.URL+r.path, g.AccessToken, body, &e); st != 403 || e.Error.Code != "user_disabled" {
					t.Errorf("%s %s as a disabled user: %d %+v, want 403 user_disabled", r.method, r.path, st, e.Error)
				}
			}
		})
	}
}
