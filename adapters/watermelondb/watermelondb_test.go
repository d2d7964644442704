package watermelondb

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

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

// A timestamp keeps the position and the read set's tag, is never zero and
// fits JavaScript's exact integers.
func TestTimestamp(t *testing.T) {
	t.Parallel()
	for _, seq := range []int64{0, 1, 12345, maxPosition} {
		ts, err := Timestamp(seq, "fp-a")
		if err != nil {
			t.Fatal(err)
		}
		if ts <= 0 || ts > 1<<53-1 || ts>>tagBits != seq || ts&tagMask != tag("fp-a") {
			t.Errorf("Timestamp(%d) = %d", seq, ts)
		}
	}
	if _, err := Timestamp(maxPosition+1, "fp-a"); err == nil {
		t.Error("a position past 2^33 was accepted")
	}
	if tag("fp-a") == tag("fp-b") {
		t.Error("two read sets share a tag (possible, but not for these two)")
	}
}

// Rows are flat: objects and arrays as strings of JSON, reserved names
// prefixed, the version as fs_version; a pushed row comes back as the same
// document.
func TestRowsRoundTrip(t *testing.T) {
	t.Parallel()
	a := newAdapter(t)
	body := json.RawMessage(`{"customer_id":"c-1","text":"hello","created_at":"2026-12-02T10:00:00Z","tags":["a","b"]}`)
	raw, err := a.Row("customer_notes", "n-1", 7, body)
	if err != nil {
		t.Fatal(err)
	}
	var row map[string]json.RawMessage
	json.Unmarshal(raw, &row)
	if string(row["tags"]) != `"[\"a\",\"b\"]"` || string(row["fs_created_at"]) != `"2026-12-02T10:00:00Z"` ||
		string(row[VersionColumn]) != "7" || row["created_at"] != nil {
		t.Fatalf("row %s", raw)
	}
	row["_status"], row["_changed"] = json.RawMessage(`"created"`), json.RawMessage(`""`)
	p := &pending{table: "customer_notes", kind: "create", row: row}
	if err := a.prepare(p, "/x"); err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	json.Unmarshal(p.mut.Doc, &got)
	json.Unmarshal(body, &want)
	if p.mut.Op != engine.OpCreate || len(got) != len(want) || got["tags"].([]any)[1] != "b" || got["created_at"] != want["created_at"] {
		t.Fatalf("create of %s: %s", raw, p.mut.Doc)
	}
	// The same row gives the same mutation id: a retry is recognised.
	q := &pending{table: "customer_notes", kind: "create", row: row}
	a.prepare(q, "/x")
	if q.mut.ID != p.mut.ID {
		t.Fatalf("mutation ids %s and %s for the same change", p.mut.ID, q.mut.ID)
	}
}

// An update sends only the changed columns, based on fs_version; bad
// columns are refused with a pointer.
func TestPrepareUpdate(t *testing.T) {
	t.Parallel()
	a := newAdapter(t)
	row := map[string]json.RawMessage{"id": json.RawMessage(`"c-1"`), "_status": json.RawMessage(`"updated"`),
		"_changed": json.RawMessage(`"segment,address"`), "segment": json.RawMessage(`"OEM"`), "name": json.RawMessage(`"Old"`),
		"address": json.RawMessage(`"{\"city\":\"Berlin\"}"`), VersionColumn: json.RawMessage(`4`)}
	p := &pending{table: "customers", kind: "update", row: row}
	if err := a.prepare(p, "/changes/customers/updated/0"); err != nil {
		t.Fatal(err)
	}
	if p.mut.BaseVersion != 4 || len(p.mut.Fields) != 2 || string(p.mut.Fields["address"]) != `{"city":"Berlin"}` {
		t.Fatalf("update %+v", p.mut)
	}
	row["address"] = json.RawMessage(`"{not json"`)
	err := a.prepare(&pending{table: "customers", kind: "update", row: row}, "/changes/customers/updated/0")
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Code != engine.CodeSchemaViolation || ee.Pointer != "/changes/customers/updated/0/address" {
		t.Fatalf("bad JSON column: %v", err)
	}
	row["_changed"] = json.RawMessage(`"created_at"`) // the field's column is fs_created_at
	err = a.prepare(&pending{table: "customers", kind: "update", row: row}, "/p")
	if !errors.As(err, &ee) || ee.Code != engine.CodeSchemaViolation {
		t.Fatalf("unknown column: %v", err)
	}
}

// The app schema has every collection, fs_version, and no column name that
// WatermelonDB reserves.
func TestAppSchema(t *testing.T) {
	t.Parallel()
	s := newAdapter(t).AppSchema()
	if s.Version != SchemaVersion || len(s.Tables) != 9 { // the synced collections, attachments included
		t.Fatalf("schema version %d, %d tables", s.Version, len(s.Tables))
	}
	for _, tb := range s.Tables {
		has := false
		for _, c := range tb.Columns {
			switch c.Name {
			case "id", "_status", "_changed", "created_at", "updated_at", "last_modified":
				t.Errorf("%s has the reserved column %s", tb.Name, c.Name)
			case VersionColumn:
				has = true
			}
			if c.Type != "string" && c.Type != "number" && c.Type != "boolean" {
				t.Errorf("%s.%s has type %s", tb.Name, c.Name, c.Type)
			}
		}
		if !has {
			t.Errorf("%s has no %s", tb.Name, VersionColumn)
		}
	}
}

// A migration is WatermelonDB's {from, tables, columns}, from a version
// below the pull's; refusals say which field.
func TestParseMigration(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, migration string
		version         int
		pointer         string // "" : accepted
	}{
		{"none", ``, 0, ""},
		{"null", `null`, 0, ""},
		{"a table and a column", `{"from":1,"tables":["price_lists"],"columns":[{"table":"customers","columns":["segment"]}]}`, 2, ""},
		{"not an object", `[1]`, 2, "/migration"},
		{"from missing", `{"tables":[]}`, 2, "/migration/from"},
		{"not from a lower version", `{"from":2,"tables":[],"columns":[]}`, 2, "/schema_version"},
		{"no schema version sent", `{"from":1,"tables":[],"columns":[]}`, 0, "/schema_version"},
		{"a column without its table", `{"from":1,"tables":[],"columns":[{"columns":["x"]}]}`, 2, "/migration/columns/0/table"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseMigration(PullQuery{SchemaVersion: c.version, Migration: json.RawMessage(c.migration)})
			var ee *engine.Error
			switch {
			case c.pointer == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.pointer != "" && (!errors.As(err, &ee) || ee.Code != engine.CodeInvalidRequest || ee.Pointer != c.pointer):
				t.Fatalf("got %v, want invalid_request at %s", err, c.pointer)
			}
		})
	}
}

// A migration sync resends the synced tables it added and those it added a
// served column to; the app's own tables and columns resend nothing.
func TestResent(t *testing.T) {
	t.Parallel()
	a := newAdapter(t)
	for _, c := range []struct {
		name string
		m    Migration
		want string
	}{
		{"an added synced table", Migration{Tables: []string{"price_lists"}}, "[price_lists]"},
		{"a served column", Migration{Columns: []AddedColumns{{Table: "customers", Columns: []string{"segment"}}}}, "[customers]"},
		{"a renamed column by its column name", Migration{Columns: []AddedColumns{{Table: "customer_notes", Columns: []string{"fs_created_at"}}}}, "[customer_notes]"},
		{"a renamed field by its field name is no column", Migration{Columns: []AddedColumns{{Table: "customer_notes", Columns: []string{"created_at"}}}}, "[]"},
		{"the app's own table and column", Migration{Tables: []string{"drafts"}, Columns: []AddedColumns{{Table: "customers", Columns: []string{"local_flag"}}, {Table: "drafts", Columns: []string{"x"}}}}, "[]"},
		{"both, once each", Migration{Tables: []string{"drafts", "orders", "orders"}, Columns: []AddedColumns{{Table: "orders", Columns: []string{"status"}}, {Table: "customers", Columns: []string{"local_flag", "notes"}}}}, "[customers orders]"},
	} {
		if got := fmt.Sprint(a.Resent(&c.m)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
