// Package storetest is the contract suite that every sync.Store adapter
// (SQLite today, MongoDB next) runs from one source. It drives the real
// engine with the real collection schemas, so a store passes only if the
// protocol that devices see holds on top of it: exactly-once pushes,
// per-mutation outcomes, field-level merges, tombstones, bounded pages,
// signed checkpoints that survive restarts, scope and tenant isolation,
// evictions on reassignment and no missed change under concurrent writers.
//
// It imports the engine and the schemas, never a store adapter: adapters
// import it from their own tests.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Harness is one fresh, empty store under test.
type Harness struct {
	Store engine.Store
	// Reopen closes Store and opens the same database again, as a server
	// restart does. The adapter's open function closes whichever store is
	// current when the test ends.
	Reopen func(t *testing.T) engine.Store
	// Light runs the concurrency cases with about a third of their
	// documents, for a test server that scans whole collections on every
	// query (FerretDB), where their cost grows with the square of the count.
	// The races they look for need many interleavings, not many documents.
	Light bool
}

// volume scales a concurrency case's batch count for the harness.
func (f *fixture) volume(n int) int {
	if f.h.Light {
		return max(n*3/10, 1)
	}
	return n
}

// Run runs the contract suite. open returns a fresh, empty store; reopen
// closes the store and opens the same database again (to prove
// durability/restarts).
func Run(t *testing.T, open func(t *testing.T) Harness) {
	set, err := schemas.Load()
	if err != nil {
		t.Fatalf("load schemas: %v", err)
	}
	cases := []struct {
		name string
		fn   func(f *fixture)
	}{
		{"CreateThenPull", testCreateThenPull},
		{"ExactlyOnce", testExactlyOnce},
		{"RejectedMutations", testRejectedMutations},
		{"FieldMerge", testFieldMerge},
		{"Delete", testDelete},
		{"Paging", testPaging},
		{"Isolation", testIsolation},
		{"Assignment", testAssignment},
		{"Restart", testRestart},
		{"ConcurrentWritersAndReaders", testConcurrency},
		{"MultiScopePull", testMultiScopePull},
		{"QuietScope", testQuietScope},
		{"Compaction", testCompaction}, // retention.go
		{"MultiScopePullUnderWriters", testMultiScopeUnderWriters},
		{"HistoryMoves", testHistoryMoves},
		{"StaleStampInBatch", testStaleStampInBatch}, // stamprace.go
		{"InterruptedReassignment", testInterruptedReassignment},
		{"Roles", testRoles},
		{"Get", testGet},
		{"Then", testThen},         // then.go
		{"Parents", testParents},   // then.go
		{"Changed", testChanged},   // stream.go
		{"Presence", testPresence}, // stream.go
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := open(t)
			f := &fixture{t: t, ctx: context.Background(), open: open, h: h, store: h.Store, schemas: set}
			f.eng = f.engine(engine.Limits{})
			f.seed()
			c.fn(f)
		})
	}
}

// The organisation, users and devices of the scenarios.
const (
	org      = "org-acme"
	otherOrg = "org-globex"
	devA     = "dev-a"
	devB     = "dev-b"
)

var (
	rep1  = engine.Actor{Org: org, User: "u-rep1", Roles: []string{"rep"}}
	rep2  = engine.Actor{Org: org, User: "u-rep2", Roles: []string{"rep"}}
	admin = engine.Actor{Org: org, User: "u-admin", Roles: []string{"admin"}}
)

// clock is the injected time of every engine in the suite.
func clock() time.Time { return time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC) }

// fixture is one subtest's store and the engine over it.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	open    func(t *testing.T) Harness
	h       Harness
	store   engine.Store
	schemas *schemas.Set
	eng     *engine.Engine
	start   map[string]string // checkpoint after the fixture's customers, by actorKey
	base    int64             // the last seq the fixture wrote
}

// The fixture's customers, in both organisations: the notes of the cases
// hang off them, and reps see a note because its customer is theirs.
const (
	cust1 = "c-1" // assigned to rep1
	cust2 = "c-2" // assigned to rep2
)

// seed creates the fixture's customers and records, for every actor of the
// suite, the checkpoint after them: a pull from "" starts there, so each
// case sees only the documents it writes.
func (f *fixture) seed() {
	f.t.Helper()
	for _, o := range []string{org, otherOrg} {
		outs, err := f.eng.Upsert(f.ctx, engine.Actor{Org: o, User: "u-admin", Roles: []string{"admin"}}, "fixture", []engine.UpsertDoc{
			{Collection: fieldsales.CollCustomers, ID: cust1, Fields: map[string]json.RawMessage{
				"name": mustJSON("Fixture customer 1"), "assigned_reps": mustJSON([]string{rep1.User})}},
			{Collection: fieldsales.CollCustomers, ID: cust2, Fields: map[string]json.RawMessage{
				"name": mustJSON("Fixture customer 2"), "assigned_reps": mustJSON([]string{rep2.User})}},
		})
		if err != nil {
			f.t.Fatalf("seed %s: %v", o, err)
		}
		for _, out := range outs {
			if out.Status != engine.StatusApplied {
				f.t.Fatalf("seed %s: %s", o, mustJSON(out))
			}
		}
	}
	for _, o := range []string{org, otherOrg} {
		pg, err := f.store.Pull(f.ctx, engine.PullQuery{Org: o, Scopes: []string{fieldsales.ScopeOrg}, Limit: 100, MaxBytes: 1 << 20})
		if err != nil {
			f.t.Fatalf("seed: %v", err)
		}
		all := pg.Changes
		for _, c := range all {
			f.base = max(f.base, c.Seq)
		}
	}
	f.start = map[string]string{}
	for _, a := range []engine.Actor{rep1, rep2, admin, twinOf(rep1), twinOf(rep2)} {
		cp := ""
		for {
			res, err := f.eng.Pull(f.ctx, a, engine.PullRequest{Checkpoint: cp, Limit: 1000})
			if err != nil {
				f.t.Fatalf("seed: pull as %s: %v", a.User, err)
			}
			cp = res.Checkpoint
			if !res.HasMore {
				break
			}
		}
		f.start[actorKey(a)] = cp
	}
}

// twinOf is a with the same user id in the other organisation.
func twinOf(a engine.Actor) engine.Actor {
	return engine.Actor{Org: otherOrg, User: a.User, Roles: a.Roles}
}

func actorKey(a engine.Actor) string { return a.Org + "/" + a.User + "/" + strings.Join(a.Roles, ",") }

// engine builds an engine over the current store, as a server start does.
func (f *fixture) engine(l engine.Limits) *engine.Engine {
	f.t.Helper()
	e, err := engine.New(f.ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: f.store, Schemas: f.schemas, Limits: l, Now: clock})
	if err != nil {
		f.t.Fatalf("engine.New: %v", err)
	}
	return e
}

// push pushes muts for actor from device and fails the test on a
// whole-request error.
func (f *fixture) push(e *engine.Engine, a engine.Actor, device string, muts ...engine.Mutation) []engine.Outcome {
	f.t.Helper()
	outs, err := e.Push(f.ctx, a, engine.PushRequest{DeviceID: device, Mutations: muts})
	if err != nil {
		f.t.Fatalf("push as %s/%s from %s: %v", a.Org, a.User, device, err)
	}
	if len(outs) != len(muts) {
		f.t.Fatalf("push returned %d outcomes for %d mutations", len(outs), len(muts))
	}
	return outs
}

// pull fetches one page and fails the test on error.
func (f *fixture) pull(e *engine.Engine, a engine.Actor, cp string, limit int) engine.PullResult {
	f.t.Helper()
	if cp == "" {
		cp = f.start[actorKey(a)]
	}
	res, err := e.Pull(f.ctx, a, engine.PullRequest{Checkpoint: cp, Limit: limit})
	if err != nil {
		f.t.Fatalf("pull as %s/%s: %v", a.Org, a.User, err)
	}
	if limit > 0 && len(res.Changes) > limit {
		f.t.Fatalf("pull with limit %d returned %d changes", limit, len(res.Changes))
	}
	if res.HasMore && len(res.Changes) == 0 {
		f.t.Fatalf("pull returned an empty page with has_more: the device would loop forever")
	}
	return res
}

// pullAll follows has_more to the end of the feed and returns every change
// and the final checkpoint.
func (f *fixture) pullAll(e *engine.Engine, a engine.Actor, cp string, limit int) ([]engine.Change, string) {
	f.t.Helper()
	var all []engine.Change
	for range 10000 {
		res := f.pull(e, a, cp, limit)
		all = append(all, res.Changes...)
		cp = res.Checkpoint
		if !res.HasMore {
			return all, cp
		}
	}
	f.t.Fatalf("pull did not reach the end of the feed after 10000 pages")
	return nil, ""
}

// byID indexes changes by document id, failing on a document that appears
// twice (a pull from one checkpoint must give each document once).
func byID(t *testing.T, changes []engine.Change) map[string]engine.Change {
	t.Helper()
	m := make(map[string]engine.Change, len(changes))
	for _, c := range changes {
		if _, dup := m[c.Collection+"/"+c.ID]; dup {
			t.Errorf("%s/%s appears twice in the pull", c.Collection, c.ID)
		}
		m[c.Collection+"/"+c.ID] = c
	}
	return m
}

// ids lists "collection/id" of changes in order.
func ids(changes []engine.Change) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.Collection + "/" + c.ID
	}
	return out
}

// Mutation builders.

// noteDoc is a note on rep1's fixture customer.
func noteDoc(text string) map[string]any { return noteDocOn(cust1, text) }

func noteDocOn(customer, text string) map[string]any {
	return map[string]any{"customer_id": customer, "text": text, "created_at": "2026-11-29T09:00:00Z"}
}

func createNoteOn(mid, id, customer, text string) engine.Mutation {
	return create(mid, fieldsales.CollCustomerNotes, id, noteDocOn(customer, text))
}

func create(mid, coll, id string, doc any) engine.Mutation {
	return engine.Mutation{ID: mid, Collection: coll, DocID: id, Op: engine.OpCreate, Doc: mustJSON(doc)}
}

func createNote(mid, id, text string) engine.Mutation {
	return create(mid, fieldsales.CollCustomerNotes, id, noteDoc(text))
}

func update(mid, coll, id string, base int64, fields map[string]any) engine.Mutation {
	m := engine.Mutation{ID: mid, Collection: coll, DocID: id, Op: engine.OpUpdate, BaseVersion: base,
		Fields: map[string]json.RawMessage{}}
	for k, v := range fields {
		m.Fields[k] = mustJSON(v)
	}
	return m
}

func del(mid, coll, id string, base int64) engine.Mutation {
	return engine.Mutation{ID: mid, Collection: coll, DocID: id, Op: engine.OpDelete, BaseVersion: base}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Assertions.

// sameJSON reports whether a and b encode the same JSON value, whatever the
// key order and whitespace.
func sameJSON(a, b any) bool {
	norm := func(v any) any {
		raw, ok := v.(json.RawMessage)
		if !ok {
			raw = mustJSON(v)
		}
		var out any
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Sprintf("invalid JSON %q", raw)
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func wantDoc(t *testing.T, what string, got json.RawMessage, want any) {
	t.Helper()
	if !sameJSON(got, want) {
		t.Errorf("%s: doc = %s, want %s", what, got, mustJSON(want))
	}
}

func wantOutcome(t *testing.T, o engine.Outcome, mid, status string, version int64) {
	t.Helper()
	if o.MutationID != mid || o.Status != status || o.Version != version || o.Error != nil {
		t.Errorf("outcome = %s, want mutation %q %s version %d", mustJSON(o), mid, status, version)
	}
}

func wantRejected(t *testing.T, o engine.Outcome, mid, code, pointer string) {
	t.Helper()
	if o.MutationID != mid || o.Status != engine.StatusRejected || o.Error == nil ||
		o.Error.Code != code || o.Error.Pointer != pointer || o.Error.Message == "" || o.Version != 0 || o.Doc != nil {
		t.Errorf("outcome = %s, want mutation %q rejected %s at %q with a message", mustJSON(o), mid, code, pointer)
	}
}

func wantPut(t *testing.T, c engine.Change, coll, id string, version int64, doc any) {
	t.Helper()
	if c.Collection != coll || c.ID != id || c.Version != version || c.Deleted || c.Evicted {
		t.Errorf("change = %s/%s v%d deleted=%v evicted=%v, want put %s/%s v%d",
			c.Collection, c.ID, c.Version, c.Deleted, c.Evicted, coll, id, version)
		return
	}
	wantDoc(t, "put "+coll+"/"+id, c.Body, doc)
}

// wantSameOutcomes checks that a retry got the recorded answers: the first
// outcomes marked replayed, without document or conflicts
// (docs/protocol.md). A mutation without a valid id was never recorded and
// is answered afresh.
func wantSameOutcomes(t *testing.T, what string, got, first []engine.Outcome) {
	t.Helper()
	want := make([]engine.Outcome, len(first))
	for i, o := range first {
		if o.MutationID != "" {
			o.Doc, o.Replayed = nil, true
			for i := range o.Conflicts {
				o.Conflicts[i].Kept = nil
			}
		}
		want[i] = o
	}
	if !sameJSON(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, mustJSON(got), mustJSON(want))
	}
}

// wantErrCode checks that err is an *engine.Error with the code and kind.
func wantErrCode(t *testing.T, what string, err error, kind engine.Kind, code string) {
	t.Helper()
	var e *engine.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: error = %v, want *engine.Error %s", what, err, code)
		return
	}
	if e.Code != code || e.Kind != kind {
		t.Errorf("%s: error = %v (kind %s), want %s (kind %s)", what, err, e.Kind, code, kind)
	}
}
