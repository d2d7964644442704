package app_test

// The RxDB endpoints' own answers over plain HTTP: an outdated schema
// version, an unknown collection, a push without a device, full batches.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

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
