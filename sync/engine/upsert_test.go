package engine_test

import (
	"encoding/json"
	"testing"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// A write that expects a version is applied only while the document is at
// that version: a history computed from a stale read is refused, not
// written over the change made since.
func TestUpsertExpectVersion(t *testing.T) {
	t.Parallel()
	eng, _, _, st := newEffectsEngine(t)
	admin := engine.Actor{Org: "o", User: "boss", Roles: []string{fieldsales.RoleAdmin}}
	ref := engine.DocRef{Collection: fieldsales.CollCustomers, ID: "c-1"}
	got, err := st.Get(t.Context(), "o", []engine.DocRef{ref})
	if err != nil {
		t.Fatal(err)
	}
	v1 := got[ref].Version
	write := func(name string, x *engine.Expect) engine.Outcome {
		t.Helper()
		outs, err := eng.Upsert(t.Context(), admin, "test", []engine.UpsertDoc{{Collection: ref.Collection, ID: ref.ID,
			Fields: map[string]json.RawMessage{"name": json.RawMessage(`"` + name + `"`)}, Expect: x}})
		if err != nil {
			t.Fatal(err)
		}
		return outs[0]
	}
	o := write("Linz", &engine.Expect{Version: v1})
	if o.Status != engine.StatusApplied || o.Version <= v1 {
		t.Fatalf("a write at the current version: %+v", o)
	}
	// Written from the read of v1 again: the document moved on.
	o = write("Graz", &engine.Expect{Version: v1})
	if o.Status != engine.StatusRejected || o.Error == nil || o.Error.Code != engine.CodePreconditionFailed || o.Error.Pointer != "/version" {
		t.Fatalf("a write at a stale version: %+v", o)
	}
	// Field and version together: both must hold.
	got, _ = st.Get(t.Context(), "o", []engine.DocRef{ref})
	v2 := got[ref].Version
	if o = write("Wels", &engine.Expect{Field: "name", In: []string{"Graz"}, Version: v2}); o.Status != engine.StatusRejected {
		t.Fatalf("the field does not hold: %+v", o)
	}
	if o = write("Wels", &engine.Expect{Field: "name", In: []string{"Linz"}, Version: v2}); o.Status != engine.StatusApplied {
		t.Fatalf("field and version hold: %+v", o)
	}
	got, _ = st.Get(t.Context(), "o", []engine.DocRef{ref})
	var body struct{ Name string }
	json.Unmarshal(got[ref].Body, &body)
	if body.Name != "Wels" {
		t.Fatalf("name %q, want Wels: the refused writes changed something", body.Name)
	}
}
