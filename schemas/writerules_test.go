package schemas

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/fieldsales"
)

// TestSchemasAgreeWithWriteRules: the schemas' annotations, which client
// developers read, say what the engine's write-rule table enforces: a
// readOnly field is the server's, x-fieldsync-writable-by names the classes
// the table names, x-fieldsync-client-values the values it allows.
func TestSchemasAgreeWithWriteRules(t *testing.T) {
	t.Parallel()
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for coll, table := range fieldsales.WriteRules {
		if !s.Has(coll) {
			t.Errorf("the write rules name %s, which has no schema", coll)
			continue
		}
		for field, r := range s.Rules(coll) {
			f, listed := table.Fields[field]
			server := f.Server || (!listed && table.ServerRest)
			if r.ServerOnly != server {
				t.Errorf("%s.%s: schema readOnly %v, write rules server-only %v", coll, field, r.ServerOnly, server)
			}
			if r.WritableBy != nil && !slices.Equal(slices.Sorted(slices.Values(r.WritableBy)), slices.Sorted(slices.Values(f.By))) {
				t.Errorf("%s.%s: schema writable by %v, write rules %v", coll, field, r.WritableBy, f.By)
			}
			if r.ClientValues != nil && !slices.Equal(r.ClientValues, f.Values) {
				t.Errorf("%s.%s: schema client values %v, write rules %v", coll, field, r.ClientValues, f.Values)
			}
		}
		if enum := stateEnum(t, coll, table.State); enum != nil && !slices.Equal(enum, table.States) {
			t.Errorf("%s.%s: schema states %v, write rules %v (in the schema's order)", coll, table.State, enum, table.States)
		}
		for field, f := range table.Fields {
			if f.Server && !s.Rules(coll)[field].ServerOnly {
				t.Errorf("%s.%s: the write rules make it the server's; the schema does not say readOnly", coll, field)
			}
			if f.By != nil && s.Rules(coll)[field].WritableBy == nil {
				t.Errorf("%s.%s: the write rules limit its writers to %v; the schema has no x-fieldsync-writable-by", coll, field, f.By)
			}
		}
	}
}

// stateEnum is the enum of coll's state field in its schema (nil for a
// derived state).
func stateEnum(t *testing.T, coll, field string) []string {
	raw, err := files.ReadFile(coll + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties map[string]struct {
			Enum []string `json:"enum"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s.Properties[field].Enum
}
