package watermelondb

import (
	"encoding/json"

	"github.com/fieldsync/fieldsync/adapters"
)

// Column is one column of tableSchema() in WatermelonDB's terms.
type Column struct {
	Name       string `json:"name"`
	Type       string `json:"type"` // string, number, boolean
	IsOptional bool   `json:"isOptional"`
	IsIndexed  bool   `json:"isIndexed,omitempty"`
}

// Table is the argument of WatermelonDB's tableSchema().
type Table struct {
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
}

// AppSchemaDoc is the argument of WatermelonDB's appSchema(), as served at
// GET /v1/adapters/watermelondb/schema: an app builds its schema with
// appSchema({version, tables: tables.map(tableSchema)}).
type AppSchemaDoc struct {
	Version int     `json:"version"`
	Tables  []Table `json:"tables"`
}

// AppSchema returns the app schema generated from the JSON Schemas: one
// table per collection, one column per top-level field (objects and arrays
// as strings of JSON), every column optional (a missing field is null), and
// fs_version.
func (a *Adapter) AppSchema() AppSchemaDoc {
	doc := AppSchemaDoc{Version: SchemaVersion}
	for _, name := range a.names {
		t := Table{Name: name}
		for _, f := range a.tables[name].Fields {
			typ := string(f.Kind)
			if f.Kind == adapters.KindJSON {
				typ = "string"
			}
			t.Columns = append(t.Columns, Column{Name: column(f.Name), Type: typ, IsOptional: true, IsIndexed: f.Name == "customer_id"})
		}
		t.Columns = append(t.Columns, Column{Name: VersionColumn, Type: "number", IsOptional: true})
		doc.Tables = append(doc.Tables, t)
	}
	return doc
}

// AppSchemaJSON is AppSchema encoded.
func (a *Adapter) AppSchemaJSON() []byte {
	b, _ := json.Marshal(a.AppSchema())
	return b
}
