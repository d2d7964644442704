package engine_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// wiki is a domain that is not field sales, for the engine's tests: pages
// hang off folders, and a folder's members read its pages. The engine must
// carry it through the same mechanics (parents, inheritance, restamps) with
// nothing but engine.Rules.
type wiki struct{}

func (wiki) ReadSet(a engine.Actor, _ []string) []string { return []string{"member:" + a.User} }
func (wiki) Check(engine.Actor, *engine.Mutation, map[string]any, map[string]any) error {
	return nil
}

func (wiki) Parent(coll string, body map[string]any) (engine.DocRef, bool) {
	f, _ := body["folder"].(string)
	return engine.DocRef{Collection: "folders", ID: f}, coll == "pages" && f != ""
}
func (wiki) ChildKey(p engine.DocRef) string { return "folder:" + p.ID }
func (wiki) Inherited(p *engine.Document) []string {
	if p == nil || p.Deleted {
		return nil
	}
	return slices.DeleteFunc(slices.Clone(p.Scopes), func(k string) bool { return !strings.HasPrefix(k, "member:") })
}
func (wiki) Recheck(coll string, fields map[string]json.RawMessage) bool {
	_, ok := fields["members"]
	return ok && coll == "folders"
}
func (w wiki) Keys(k engine.Keying) []string {
	var keys []string
	switch k.Collection {
	case "folders":
		keys = []string{"folder:" + k.ID}
		for _, m := range k.Body["members"].([]any) {
			keys = append(keys, "member:"+m.(string))
		}
	case "pages":
		keys = []string{w.ChildKey(engine.DocRef{ID: k.Body["folder"].(string)})}
		if k.Own {
			keys = append(keys, w.Inherited(&engine.Document{Scopes: k.Prev})...)
		} else {
			keys = append(keys, w.Inherited(k.Parent)...)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}
func (wiki) Grants(*engine.Document, map[string]any) map[engine.DocRef][]string { return nil }
func (w wiki) Begin(context.Context, engine.Reader, engine.BatchInfo) (engine.Batch, error) {
	return wikiBatch{w}, nil
}

type wikiBatch struct{ w wiki }

func (wikiBatch) Refused(*engine.Mutation) error { return nil }
func (b wikiBatch) Decide(w *engine.Write) error {
	if w.Body == nil { // a delete
		return nil
	}
	cur := w.Cur
	k := engine.Keying{Collection: w.Mutation.Collection, ID: w.Mutation.DocID, Owner: w.Actor.User, Body: w.Body,
		Parent: w.Parent, Own: !w.ParentRead}
	if cur != nil {
		k.Prev = cur.Scopes
	}
	w.Keys = b.w.Keys(k)
	return nil
}

// wikiEngine is an engine with the wiki's rules on a SQLite store.
func wikiEngine(t *testing.T) (*sqlite.Store, *engine.Engine) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "wiki.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := engine.New(t.Context(), engine.Config{Store: st, Schemas: anything{}, Rules: wiki{}})
	if err != nil {
		t.Fatal(err)
	}
	return st, eng
}

// anything validates every document of the wiki's collections.
type anything struct{}

func (anything) Has(c string) bool                                 { return c == "folders" || c == "pages" }
func (anything) Validate(string, map[string]any) *engine.Violation { return nil }
func (anything) Rules(string) map[string]engine.FieldRule          { return nil }

// The engine's mechanics with another domain's rules: a page is read by its
// folder's members, a member cannot write into a folder they do not read,
// and a folder's new member reads its pages while the old one is told to drop
// them.
func TestRulesOfAnotherDomain(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, eng := wikiEngine(t)
	ann := engine.Actor{Org: "o", User: "ann"}
	bob := engine.Actor{Org: "o", User: "bob"}
	if _, err := eng.Upsert(ctx, ann, "test", []engine.UpsertDoc{{Collection: "folders", ID: "f",
		Fields: map[string]json.RawMessage{"members": json.RawMessage(`["ann"]`)}}}); err != nil {
		t.Fatal(err)
	}
	page := func(who engine.Actor, id string) engine.Outcome {
		t.Helper()
		outs, err := eng.Push(ctx, who, engine.PushRequest{DeviceID: "d", Mutations: []engine.Mutation{{ID: "m-" + id,
			Collection: "pages", DocID: id, Op: engine.OpCreate, Doc: json.RawMessage(`{"folder":"f","text":"x"}`)}}})
		if err != nil {
			t.Fatal(err)
		}
		return outs[0]
	}
	if o := page(ann, "p-1"); o.Status != engine.StatusApplied {
		t.Fatalf("ann's page: %+v", o)
	}
	pulled := func(who engine.Actor, cp string) (map[string]engine.Change, string) {
		t.Helper()
		r, err := eng.Pull(ctx, who, engine.PullRequest{Checkpoint: cp, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]engine.Change{}
		for _, c := range r.Changes {
			out[c.Collection+"/"+c.ID] = c
		}
		return out, r.Checkpoint
	}
	got, annCP := pulled(ann, "")
	if _, ok := got["pages/p-1"]; !ok {
		t.Fatalf("ann does not read her page: %v", got)
	}
	got, bobCP := pulled(bob, "")
	if len(got) != 0 {
		t.Fatalf("bob reads %v before he is a member", got)
	}
	// The engine's rule, whatever the domain: a write into a scope the
	// writer does not read is refused. (A create's refusal is the rules'
	// to word: here the page is simply stamped with the folder's keys, and
	// bob does not read it.)
	upd, err := eng.Push(ctx, bob, engine.PushRequest{DeviceID: "d", Mutations: []engine.Mutation{{ID: "m-u", Collection: "pages",
		DocID: "p-1", Op: engine.OpUpdate, BaseVersion: 1, Fields: map[string]json.RawMessage{"text": json.RawMessage(`"mine"`)}}}})
	if err != nil || upd[0].Status != engine.StatusRejected || upd[0].Error.Code != engine.CodeForbidden {
		t.Fatalf("bob updates ann's page: %v %+v", err, upd)
	}
	// Ann hands the folder to bob from her device: its pages move with it.
	outs, err := eng.Push(ctx, ann, engine.PushRequest{DeviceID: "d", Mutations: []engine.Mutation{{ID: "m-f", Collection: "folders",
		DocID: "f", Op: engine.OpUpdate, BaseVersion: 1, Fields: map[string]json.RawMessage{"members": json.RawMessage(`["bob"]`)}}}})
	if err != nil || outs[0].Status != engine.StatusApplied {
		t.Fatalf("ann hands the folder over: %v %+v", err, outs)
	}
	got, _ = pulled(bob, bobCP)
	if c, ok := got["pages/p-1"]; !ok || c.Deleted || c.Evicted {
		t.Fatalf("bob, the folder's new member, does not read its page: %v", got)
	}
	got, _ = pulled(ann, annCP)
	if c, ok := got["pages/p-1"]; !ok || !c.Evicted {
		t.Fatalf("ann, no longer a member, is not told to drop the page: %v", got)
	}
}

// counter is an Effects for the wiki: every page a device edits gets its
// edit count written by the server in the same push.
type counter struct{}

func (counter) Prepare(_ context.Context, _ engine.Actor, muts []engine.Mutation) (engine.EffectPlan, error) {
	return counterPlan{}, nil
}

type counterPlan struct{}

func (counterPlan) Writer() (string, string) { return "counter", "counter" }
func (counterPlan) Read() []*engine.Document { return nil }
func (counterPlan) Writes(docs []*engine.Document) ([]engine.UpsertDoc, error) {
	var out []engine.UpsertDoc
	for _, d := range docs {
		if d.Collection == "pages" && d.UpdatedBy != "counter" {
			out = append(out, engine.UpsertDoc{Collection: "pages", ID: d.ID,
				Fields: map[string]json.RawMessage{"edits": json.RawMessage(`1`)}})
		}
	}
	return out, nil
}

// A server write in a device's push, to a document whose parent the push did
// not read (a device's update names no parent): the document keeps what its
// parent passed on, so its readers keep it.
func TestEffectKeepsInheritedKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, eng := wikiEngine(t)
	ann := engine.Actor{Org: "o", User: "ann"}
	if _, err := eng.Upsert(ctx, ann, "test", []engine.UpsertDoc{{Collection: "folders", ID: "f",
		Fields: map[string]json.RawMessage{"members": json.RawMessage(`["ann"]`)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Upsert(ctx, ann, "test", []engine.UpsertDoc{{Collection: "pages", ID: "p",
		Fields: map[string]json.RawMessage{"folder": json.RawMessage(`"f"`), "text": json.RawMessage(`"x"`)}}}); err != nil {
		t.Fatal(err)
	}
	eng.AddEffects(counter{})
	outs, err := eng.Push(ctx, ann, engine.PushRequest{DeviceID: "d", Mutations: []engine.Mutation{{ID: "m-1", Collection: "pages",
		DocID: "p", Op: engine.OpUpdate, BaseVersion: 1, Fields: map[string]json.RawMessage{"text": json.RawMessage(`"y"`)}}}})
	if err != nil || outs[0].Status != engine.StatusApplied {
		t.Fatalf("ann edits her page: %v %+v", err, outs)
	}
	got, err := st.Get(ctx, "o", []engine.DocRef{{Collection: "pages", ID: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	p := got[engine.DocRef{Collection: "pages", ID: "p"}]
	if p.Version != 3 || !slices.Contains(p.Scopes, "member:ann") {
		t.Errorf("after the counter's write: version %d, keys %v; want 3 with member:ann", p.Version, p.Scopes)
	}
}
