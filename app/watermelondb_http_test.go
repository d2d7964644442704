package app_test

// The WatermelonDB endpoint's own rules over plain HTTP: bounded pages, a
// read-set change answered with the replacement strategy, migration syncs,
// and bad input refused.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
)

type wmPull struct {
	Changes map[string]struct {
		Created []map[string]any `json:"created"`
		Updated []map[string]any `json:"updated"`
		Deleted []string         `json:"deleted"`
	} `json:"changes"`
	Timestamp int64  `json:"timestamp"`
	Strategy  string `json:"experimentalStrategy"`
	HasMore   bool   `json:"has_more"`
}

func wmPullAs(w *accWorld, tok string, q url.Values) wmPull {
	w.T.Helper()
	var p wmPull
	st, raw := doRaw(w.T, "GET", w.Server.URL+"/v1/adapters/watermelondb/sync?"+q.Encode(), tok, nil)
	if st != 200 || json.Unmarshal(raw, &p) != nil {
		w.T.Fatalf("watermelondb pull %v: %d %s", q, st, raw)
	}
	return p
}

// wmDrain pulls from last until the feed ends and returns the ids of the
// customers it delivered, the last timestamp and the first page's strategy.
func wmDrain(w *accWorld, tok string, last int64, extra url.Values) (map[string]bool, int64, string, int) {
	w.T.Helper()
	got, strategy, pages := map[string]bool{}, "", 0
	for {
		q := url.Values{"limit": {"1"}}
		if last != 0 {
			q.Set("last_pulled_at", fmt.Sprint(last))
		}
		for k, v := range extra {
			q[k] = v
		}
		p := wmPullAs(w, tok, q)
		if pages == 0 {
			strategy = p.Strategy
		} else if p.Strategy != "" {
			w.T.Fatalf("page %d has strategy %q: only a reset's first page replaces", pages, p.Strategy)
		}
		pages++
		if len(p.Changes["customers"].Updated)+len(p.Changes["customers"].Deleted) > 1 {
			w.T.Fatalf("a page of limit 1 held %v", p.Changes["customers"])
		}
		for _, r := range p.Changes["customers"].Updated {
			got[r["id"].(string)] = true
		}
		if p.Timestamp <= 0 {
			w.T.Fatalf("timestamp %d", p.Timestamp)
		}
		last, extra = p.Timestamp, nil
		if !p.HasMore {
			return got, last, strategy, pages
		}
	}
}

func TestWatermelonDBPullRules(t *testing.T) {
	t.Parallel()
	w := newAccWorld(t, onSQLite)
	w.AddTeam("acme", "T")
	w.AddUser("acme", accUser{ID: "r1", Roles: []string{"rep"}, Teams: []string{"T"}})
	w.AddUser("acme", accUser{ID: "m1", Roles: []string{"manager"}})
	for _, c := range []string{"c-1", "c-2", "c-3"} {
		createCustomer(t, w.Server.URL, w.Operator("acme"), c, "r1")
	}
	rep, mgr := w.Token("acme", "r1", "rep"), w.Token("acme", "m1", "manager")

	// A first sync in pages of one: bounded responses, each resumable.
	got, last, strategy, pages := wmDrain(w, rep, 0, nil)
	if len(got) != 3 || pages < 3 || strategy != "" {
		t.Fatalf("first sync: %v in %d pages, strategy %q", got, pages, strategy)
	}
	if got, _, _, _ := wmDrain(w, rep, last, nil); len(got) != 0 {
		t.Fatalf("a pull from the last timestamp delivered %v again", got)
	}
	// A migration sync: one that adds a served column (or a synced table)
	// re-reads from the start without replacement, and its later pages are
	// ordinary pulls; one of the app's own tables and columns is an
	// ordinary pull.
	migration := func(m string) url.Values { return url.Values{"migration": {m}, "schema_version": {"3"}} }
	for _, m := range []string{
		`{"from":2,"tables":[],"columns":[{"table":"customers","columns":["segment"]}]}`,
		`{"from":1,"tables":["drafts","customers"],"columns":[]}`,
	} {
		if got, _, strategy, _ := wmDrain(w, rep, last, migration(m)); len(got) != 3 || strategy != "" {
			t.Fatalf("migration %s delivered %v with strategy %q, want every customer without replacement", m, got, strategy)
		}
	}
	if got, _, _, _ := wmDrain(w, rep, last, migration(`{"from":2,"tables":["drafts"],"columns":[{"table":"customers","columns":["local_flag"]}]}`)); len(got) != 0 {
		t.Fatalf("a migration of the app's own table and column delivered %v, want nothing new", got)
	}

	// The manager sees nothing of r1's until leading team T: the read set
	// changes, and the next pull replaces what the device holds.
	got, mlast, _, _ := wmDrain(w, mgr, 0, nil)
	if len(got) != 0 {
		t.Fatalf("the manager sees %v before leading T", got)
	}
	w.Admin("acme", "PATCH", "/users/m1", map[string]any{"leads": []string{"T"}}, 200)
	got, _, strategy, _ = wmDrain(w, mgr, mlast, nil)
	if len(got) != 3 || strategy != "replacement" {
		t.Fatalf("after leading T: %v with strategy %q, want the 3 customers with replacement", got, strategy)
	}

	// Bad input changes nothing and says why.
	for _, c := range []struct {
		method, query, body, code string
	}{
		{"GET", "last_pulled_at=yesterday", "", "bad_checkpoint"},
		{"GET", "last_pulled_at=-5", "", "bad_checkpoint"},
		{"GET", "limit=0", "", "limit_out_of_range"},
		{"GET", "migration=%7Bnot", "", "invalid_request"},
		{"GET", "schema_version=2&migration=%7B%22from%22%3A2%7D", "", "invalid_request"}, // not from a lower version
		{"POST", "", `{"changes":{}}`, "invalid_request"},
		{"POST", "device_id=d1", `{"changes":{"no_such":{"created":[],"updated":[],"deleted":[]}}}`, "unknown_collection"},
		{"POST", "device_id=d1", `{"changes":`, "malformed_json"},
	} {
		var e errorReply
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		st, raw := doRaw(t, c.method, w.Server.URL+"/v1/adapters/watermelondb/sync?"+c.query, rep, body)
		if json.Unmarshal(raw, &e); st != 400 || e.Error.Code != c.code {
			t.Errorf("%s ?%s %s: %d %s, want 400 %s", c.method, c.query, c.body, st, raw, c.code)
		}
	}
	// Without a token: 401, like every sync route.
	if st, _ := doRaw(t, "GET", w.Server.URL+"/v1/adapters/watermelondb/sync", "", nil); st != 401 {
		t.Errorf("pull without a token: %d", st)
	}
}

// Push follows WatermelonDB's backend rules: created of an existing id is an
// update, updated of an unknown id a create, deleted of a missing id is
// ignored; a retry is recognised; a refusal is listed, never dropped.
func TestWatermelonDBPushRules(t *testing.T) {
	t.Parallel()
	w := newAccWorld(t, onSQLite)
	createCustomer(t, w.Server.URL, w.Operator("acme"), "c-1", "r1")
	tok := w.Token("acme", "r1", "rep")
	type reply struct {
		RejectedIDs map[string][]string `json:"experimentalRejectedIds"`
		Rejected    []struct {
			Table, ID, Code string
			Record          map[string]any
		} `json:"rejected"`
	}
	push := func(changes string) reply {
		t.Helper()
		var r reply
		st, raw := doRaw(t, "POST", w.Server.URL+"/v1/adapters/watermelondb/sync?device_id=phone-1", tok, []byte(`{"changes":`+changes+`,"lastPulledAt":null}`))
		if st != 200 || json.Unmarshal(raw, &r) != nil {
			t.Fatalf("push %s: %d %s", changes, st, raw)
		}
		return r
	}
	note := func(id, text, status, changed string) string {
		return fmt.Sprintf(`{"id":%q,"customer_id":"c-1","text":%q,"fs_created_at":"2026-12-02T10:00:00Z","tags":null,"visit_log_id":null,"fs_version":null,"_status":%q,"_changed":%q}`,
			id, text, status, changed)
	}
	notes := func(created, updated, deleted string) string {
		return fmt.Sprintf(`{"customer_notes":{"created":[%s],"updated":[%s],"deleted":[%s]}}`, created, updated, deleted)
	}
	text := func(id string) any {
		doc, _ := w.Visible(tok)["customer_notes/"+id]
		var m map[string]any
		json.Unmarshal(doc, &m)
		return m["text"]
	}

	// A create, then the same push again (its reply lost): applied once.
	for range 2 {
		if r := push(notes(note("n-1", "first", "created", ""), "", "")); len(r.Rejected) != 0 {
			t.Fatalf("create: %+v", r)
		}
	}
	// Created again with other content (the reply was lost, then the note
	// was edited): an update.
	if r := push(notes(note("n-1", "edited before the retry", "created", ""), "", "")); len(r.Rejected) != 0 || text("n-1") != "edited before the retry" {
		t.Fatalf("created of an existing id: %+v, text %v", r, text("n-1"))
	}
	// Updated, but the server never had it: a create of the whole row.
	if r := push(notes("", note("n-2", "never pushed as created", "updated", "text"), "")); len(r.Rejected) != 0 || text("n-2") != "never pushed as created" {
		t.Fatalf("updated of an unknown id: %+v, text %v", r, text("n-2"))
	}
	// Deleted of a missing id: ignored; of an existing one: deleted.
	if r := push(notes("", "", `"n-404","n-2"`)); len(r.Rejected) != 0 || text("n-2") != nil {
		t.Fatalf("deletes: %+v, n-2 text %v", r, text("n-2"))
	}
	// A refusal: a note on a customer the rep does not have.
	createCustomer(t, w.Server.URL, w.Operator("acme"), "c-other", "r2")
	bad := `{"id":"n-3","customer_id":"c-other","text":"x","_status":"created","_changed":""}`
	r := push(notes(bad, "", ""))
	if len(r.Rejected) != 1 || r.Rejected[0].Code != "customer_not_in_scope" || r.Rejected[0].Record != nil ||
		fmt.Sprint(r.RejectedIDs["customer_notes"]) != "[n-3]" {
		t.Fatalf("refusal: %+v", r)
	}
}

// No page names an id twice (WatermelonDB applies a page as one batch and
// refuses a record that is both updated and deleted): a record changed
// twice between two pulls comes once, at its latest version; one changed
// again between the pages of a drain comes again on a later page, once; a
// record created, edited and deleted between two pulls comes once, as
// deleted. On both stores.
func TestWatermelonDBPagesHoldEachIDOnce(t *testing.T) {
	t.Parallel()
	for _, s := range wfStores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			w := newAccWorld(t, s.store)
			for i := range 4 {
				createCustomer(t, w.Server.URL, w.Operator("acme"), fmt.Sprintf("c-%d", i), "r1")
			}
			tok := w.Token("acme", "r1", "rep")
			// once checks a page and returns its records by "table/id".
			once := func(p wmPull) map[string]map[string]any {
				t.Helper()
				seen := map[string]map[string]any{}
				for table, tc := range p.Changes {
					if len(tc.Created) != 0 {
						t.Fatalf("%s: created %v: every record comes as updated", table, tc.Created)
					}
					for _, r := range tc.Updated {
						k := table + "/" + r["id"].(string)
						if seen[k] != nil {
							t.Fatalf("a page holds %s twice", k)
						}
						seen[k] = r
					}
					for _, id := range tc.Deleted {
						k := table + "/" + id
						if seen[k] != nil {
							t.Fatalf("a page holds %s twice (updated and deleted)", k)
						}
						seen[k] = map[string]any{"deleted": true}
					}
				}
				return seen
			}
			pull := func(last int64, limit int) wmPull {
				q := url.Values{"limit": {fmt.Sprint(limit)}}
				if last != 0 {
					q.Set("last_pulled_at", fmt.Sprint(last))
				}
				return wmPullAs(w, tok, q)
			}
			first := pull(0, 100)
			once(first)
			// Between two pulls: c-0 twice, a note created, edited and
			// deleted.
			w.MustApply(tok, "d1", []map[string]any{
				mUpdate("u1", "customers", "c-0", 1, map[string]any{"notes": "first"}),
				mUpdate("u2", "customers", "c-0", 2, map[string]any{"notes": "second"}),
				mCreate("n1", "customer_notes", "n-1", accDoc("customer_notes", "c-0", "short-lived")),
				mUpdate("n2", "customer_notes", "n-1", 1, map[string]any{"text": "edited"}),
				mDelete("n3", "customer_notes", "n-1", 2),
			})
			got := once(pull(first.Timestamp, 100))
			if len(got) != 2 || got["customers/c-0"]["notes"] != "second" || got["customers/c-0"]["fs_version"] != float64(3) ||
				got["customer_notes/n-1"]["deleted"] != true {
				t.Fatalf("after two edits and a short-lived note: %v", got)
			}
			// A drain in pages of one from the start, with c-1 edited after
			// the first page: every page names an id once, and c-1 comes
			// again with its new value.
			p := pull(0, 1)
			pages := []map[string]map[string]any{once(p)}
			w.MustApply(tok, "d1", []map[string]any{mUpdate("u3", "customers", "c-1", 1, map[string]any{"notes": "between pages"})})
			for p.HasMore {
				p = pull(p.Timestamp, 1)
				pages = append(pages, once(p))
			}
			var c1 []any
			for _, pg := range pages {
				if r := pg["customers/c-1"]; r != nil {
					c1 = append(c1, r["notes"])
				}
			}
			if len(c1) == 0 || c1[len(c1)-1] != "between pages" {
				t.Fatalf("c-1 across the pages: %v, want its edit last", c1)
			}
		})
	}
}
