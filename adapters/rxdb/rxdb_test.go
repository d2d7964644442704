package rxdb

import (
	"encoding/json"
	"testing"

	"github.com/fieldsync/fieldsync/adapters"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sync/engine"
)

func newAdapter(t *testing.T) *Adapter {
	t.Helper()
	set, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(nil, set.JSON())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func raw(s string) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	json.Unmarshal([]byte(s), &m)
	return m
}

// A push row becomes the mutation of what changed between the assumed
// master state and the new state.
func TestPrepare(t *testing.T) {
	t.Parallel()
	a := newAdapter(t)
	assumed := `{"id":"c-1","fs_version":3,"name":"A","segment":"OEM","notes":"x","_deleted":false,"_meta":{"lwt":1},"_rev":"1-a"}`
	cases := []struct {
		name      string
		row       Row
		op        engine.Op
		fields    string // the update's fields, or the create's doc
		send      bool
		baseWants int64
	}{
		{"update of two fields", Row{raw(assumed), raw(`{"id":"c-1","fs_version":3,"name":"B","segment":"OEM","_deleted":false,"_rev":"2-b"}`)},
			engine.OpUpdate, `{"name":"B","notes":null}`, true, 3},
		{"nothing changed", Row{raw(assumed), raw(assumed)}, "", "", false, 0},
		{"create", Row{nil, raw(`{"id":"c-2","name":"N","_deleted":false,"_meta":{},"_rev":"1-x","_attachments":{}}`)},
			engine.OpCreate, `{"name":"N"}`, true, 0},
		{"delete", Row{raw(assumed), raw(`{"id":"c-1","_deleted":true}`)}, engine.OpDelete, "", true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &pending{id: "c-1", row: c.row}
			switch {
			case c.op == engine.OpDelete:
				p.kind = "delete"
			case c.row.Assumed == nil:
				p.kind = "create"
			default:
				p.kind = "update"
			}
			if got := a.prepare("customers", p); got != c.send {
				t.Fatalf("send %v, want %v", got, c.send)
			}
			if !c.send {
				return
			}
			if p.mut.Op != c.op || p.mut.BaseVersion != c.baseWants {
				t.Fatalf("mutation %+v", p.mut)
			}
			got := p.mut.Doc
			if c.op == engine.OpUpdate {
				got, _ = json.Marshal(p.mut.Fields)
			}
			if c.fields != "" && !adapters.JSONEqual(got, json.RawMessage(c.fields)) {
				t.Fatalf("sent %s, want %s", got, c.fields)
			}
			q := &pending{id: p.id, kind: p.kind, row: c.row}
			a.prepare("customers", q)
			if q.mut.ID != p.mut.ID {
				t.Fatal("the same row gave two mutation ids")
			}
		})
	}
}

// The RxJsonSchemas have id as primary key, fs_version, and every field.
func TestSchemas(t *testing.T) {
	t.Parallel()
	all := newAdapter(t).Schemas()
	if len(all) != 9 { // the synced collections, attachments included
		t.Fatalf("%d schemas", len(all))
	}
	var s struct {
		PrimaryKey string                     `json:"primaryKey"`
		Version    int                        `json:"version"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	json.Unmarshal(all["orders"], &s)
	if s.PrimaryKey != "id" || s.Properties["id"] == nil || s.Properties[VersionField] == nil || s.Properties["lines"] == nil {
		t.Fatalf("orders schema: %s", all["orders"])
	}
}
