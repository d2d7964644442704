package app_test

// The RxDB endpoints' own answers over plain HTTP: an outdated schema
// version, an unknown collection, a push without a device, full batches.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/internal/patience"
)

func TestRxDBEndpointRules(t *testing.T) {
	t.Parallel()
	w := newAccWorld(t, onSQLite)
	for i := range 5 {
		createCustomer(t, w.Server.URL, w.Operator("acme"), fmt.Sprintf("c-%d", i), "r1")
	}
	// Notes between the customers: a customers pull must skip them and
	// still fill its batch.
	tok := w.Token("acme", "r1", "rep")
	w.MustApply(tok, "d0", []map[string]any{mCreate("n1", "customer_notes", "n-1", accDoc("customer_notes", "c-0", "x"))})
	createCustomer(t, w.Server.URL, w.Operator("acme"), "c-5", "r1")

	base := w.Server.URL + "/v1/adapters/rxdb"
	var e errorReply
	st, raw := doRaw(t, "GET", base+"/customers/2/pull?limit=10", tok, nil)
	if json.Unmarshal(raw, &e); st != http.StatusUpgradeRequired || e.Error.Code != "outdated_client" {
		t.Errorf("another schema version: %d %s, want 426 outdated_client", st, raw)
	}
	st, raw = doRaw(t, "GET", base+"/no_such/1/pull?limit=10", tok, nil)
	if json.Unmarshal(raw, &e); st != 404 || e.Error.Code != "unknown_collection" {
		t.Errorf("unknown collection: %d %s", st, raw)
	}
	st, raw = doRaw(t, "POST", base+"/customers/1/push", tok, []byte(`[]`))
	if json.Unmarshal(raw, &e); st != 400 || e.Error.Code != "invalid_request" {
		t.Errorf("push without X-Device-Id: %d %s", st, raw)
	}
	if st, _ := doRaw(t, "GET", base+"/customers/1/pull", "", nil); st != 401 {
		t.Errorf("pull without a token: %d", st)
	}

	// Batches of 2 over 6 customers and a note: full batches until the end.
	type page struct {
		Documents  []map[string]any `json:"documents"`
		Checkpoint struct {
			ID  string `json:"id"`
			LWT int64  `json:"lwt"`
		} `json:"checkpoint"`
	}
	var sizes []int
	seen := map[string]bool{}
	id := ""
	for range 10 {
		var p page
		if st := do(t, "GET", base+"/customers/1/pull?limit=2&lwt=0&id="+id, tok, nil, &p); st != 200 {
			t.Fatalf("pull: %d", st)
		}
		sizes = append(sizes, len(p.Documents))
		for _, d := range p.Documents {
			if seen[d["id"].(string)] {
				t.Errorf("%s delivered twice", d["id"])
			}
			seen[d["id"].(string)] = true
		}
		id = p.Checkpoint.ID
		if len(p.Documents) < 2 {
			break
		}
	}
	if fmt.Sprint(sizes) != "[2 2 2 0]" || len(seen) != 6 {
		t.Fatalf("batch sizes %v, %d customers, want [2 2 2 0] and 6", sizes, len(seen))
	}
}

// replicateServer of an app on another schema version is told it is
// outdated (426) and stops.
func TestRxDBOutdatedClient(t *testing.T) {
	t.Parallel()
	needNode(t)
	w := newAccWorld(t, onSQLite)
	d := startJSDevice(t, "old-app", "rxdb/outdated.js", w.Server.URL, w.Token("acme", "r1", "rep"))
	select {
	case line, ok := <-d.out:
		if !ok || line != `{"outdated":true}` {
			t.Fatalf("the old app said %q", line)
		}
	case <-time.After(max(2*time.Minute, patience.Of(t))):
		t.Fatal("replicateServer was not told it is outdated within its patience")
	}
}

// The pull stream over plain HTTP, on both stores: it is a watch of the
// live stream's hub (server/adapters.go), so a change reaches it without
// any stream polling the store; a changed read set ends it; and a user's
// streams have a limit of their own, refused before the stream starts.
func TestRxDBPullStream(t *testing.T) {
	t.Parallel()
	for _, s := range wfStores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			w := newAccWorld(t, func(t testing.TB) func(*app.Config) {
				tweak := s.store(t)
				return func(c *app.Config) {
					if tweak != nil {
						tweak(c)
					}
					// One device per user: 16 pull streams (a device's
					// collections). Access is re-checked with the
					// heartbeats, here every 50 ms.
					c.Stream.MaxPerUser = 1
					c.Stream.Heartbeat, c.Stream.Recheck = 50*time.Millisecond, 50*time.Millisecond
				}
			})
			w.AddTeam("acme", "north")
			w.AddUser("acme", accUser{ID: "rep-9", Roles: []string{"rep"}, Teams: []string{"north"}})
			w.AddUser("acme", accUser{ID: "mgr-9", Roles: []string{"manager"}, Leads: []string{"north"}})
			createCustomer(t, w.Server.URL, w.Operator("acme"), "c-9", "rep-9")
			rep, mgr := w.Token("acme", "rep-9", "rep"), w.Token("acme", "mgr-9", "manager")

			reps := openRxDBStream(t, w.Server.URL, rep, "customers")
			notes := openRxDBStream(t, w.Server.URL, rep, "customer_notes")
			mgrs := openRxDBStream(t, w.Server.URL, mgr, "customers")
			w.MustApply(rep, "d1", []map[string]any{
				mUpdate("u1", "customers", "c-9", 1, map[string]any{"notes": "streamed"}),
				mCreate("n1", "customer_notes", "n-9", accDoc("customer_notes", "c-9", "a note")),
			})
			waitStreamed(t, reps, "c-9", "notes", "streamed")
			waitStreamed(t, mgrs, "c-9", "notes", "streamed")
			waitStreamed(t, notes, "n-9", "customer_id", "c-9")

			// The manager stops leading north: the stream ends before it
			// sends anything under the new read set (the app's next pull
			// is told to start over).
			w.Admin("acme", "PATCH", "/users/mgr-9", map[string]any{"leads": []string{}}, 200)
			give := time.After(patience.Of(t))
			for ended := false; !ended; {
				select {
				case d, ok := <-mgrs:
					if !ok {
						ended = true
					} else if d["id"] == "c-9" {
						t.Fatalf("the manager's stream sent %v after the read set changed", d)
					}
				case <-give:
					t.Fatal("the manager's stream did not end within the test's patience after the read set changed")
				}
			}

			// 16 streams a device (MaxPerUser 1): the 17th is refused.
			for range 14 {
				openRxDBStream(t, w.Server.URL, rep, "products")
			}
			var e errorReply
			st, raw := doRaw(t, "GET", w.Server.URL+"/v1/adapters/rxdb/products/1/pullStream", rep, nil)
			if json.Unmarshal(raw, &e); st != http.StatusTooManyRequests || e.Error.Code != "too_many_streams" {
				t.Fatalf("a 17th pull stream: %d %s, want 429 too_many_streams", st, raw)
			}
		})
	}
}

// rxCollections are the synced collections, one RxDB collection each.
var rxCollections = []string{"attachments", "customer_notes", "customers", "follow_ups", "orders", "price_lists", "products", "visit_logs", "visit_plans"}

// openRxDBStream opens collection's RxDB pull stream with tok and returns
// its messages' documents as they arrive; the stream closes when the test
// ends.
func openRxDBStream(t testing.TB, base, tok, collection string) <-chan map[string]any {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/adapters/rxdb/"+collection+"/1/pullStream", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	// Not http.DefaultClient: its transport reads JSON replies whole to
	// validate them, which a stream never ends.
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("pull stream: %d", resp.StatusCode)
	}
	out := make(chan map[string]any, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var m struct {
				Documents []map[string]any `json:"documents"`
			}
			if json.Unmarshal([]byte(data), &m) != nil {
				continue
			}
			for _, d := range m.Documents {
				out <- d
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return out
}

// waitStreamed reads msgs until document id has field == value.
func waitStreamed(t testing.TB, msgs <-chan map[string]any, id, field string, value any) {
	t.Helper()
	give := time.After(patience.Of(t))
	for {
		select {
		case d, ok := <-msgs:
			if !ok {
				t.Fatal("the pull stream ended")
			}
			if d["id"] == id && d[field] == value {
				return
			}
		case <-give:
			t.Fatalf("%s.%s = %v did not arrive over the pull stream within the test's patience", id, field, value)
		}
	}
}
