package csvimport

import (
	"reflect"
	"strings"
	"testing"
)

// TestReadCSV: a header naming an unknown or repeated column, or no id,
// fails the whole file; bad rows are reported with their line and left out;
// a spreadsheet's byte order mark and trailing empty rows are harmless.
func TestReadCSV(t *testing.T) {
	t.Parallel()
	cols := importColumns["customers"]
	for _, c := range []struct{ name, file, want string }{
		{"unknown column", "id,name,fax\n", `line 1: unknown column "fax"`},
		{"repeated column", "id,name,Name\n", `line 1: column "name" appears twice`},
		{"no id", "name,city\n", "line 1: the header has no id column"},
		{"empty file", "", "the file is empty"},
	} {
		if _, err := readCSV(strings.NewReader(c.file), "customers", cols, &Report{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	rep := &Report{}
	rows, err := readCSV(strings.NewReader("\ufeffID, Name ,city\nc-1,Acme,Ulm\nc-2,Beta\n,Gamma,Bonn\nc-4,\"Delta\",Köln\n,,\n"), "customers", cols, rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].cells["id"] != "c-1" || rows[1].line != 5 || rows[1].cells["city"] != "Köln" {
		t.Errorf("rows: %+v", rows)
	}
	want := []RowError{
		{Line: 3, Field: "row", Code: "column_count", Message: "2 columns, the header has 3"},
		{Line: 4, Field: "id", Code: "missing_value", Message: "every row needs an id"},
	}
	if rep.Rows != 4 || rep.Failed != 2 || !reflect.DeepEqual(rep.Errors, want) {
		t.Errorf("report: %d rows, %d failed, %+v", rep.Rows, rep.Failed, rep.Errors)
	}
}

// TestDocument: each cell kind becomes its JSON value at its path, and a
// cell that does not convert names its column.
func TestDocument(t *testing.T) {
	t.Parallel()
	row := func(cells map[string]string) csvRow { return csvRow{line: 2, cells: cells} }
	fields, rerr := document(importColumns["customers"], row(map[string]string{"id": "c-1", "city": "Ulm", "lat": "48.4",
		"lon": "9.99", "assigned_reps": "u-1; ;u-2"}))
	want := map[string]any{"address": map[string]any{"city": "Ulm"}, "location": map[string]any{"lat": 48.4, "lng": 9.99},
		"assigned_reps": []string{"u-1", "u-2"}}
	if rerr != nil || !reflect.DeepEqual(fields, want) {
		t.Errorf("customer: %v %+v", fields, rerr)
	}
	fields, rerr = document(importColumns["products"], row(map[string]string{"id": "p-1", "list_price": "12.50", "active": "No"}))
	if rerr != nil || !reflect.DeepEqual(fields, map[string]any{"list_price": "12.50", "active": false}) {
		t.Errorf("product: %v %+v", fields, rerr)
	}
	for _, c := range []struct {
		name        string
		kind        string
		cells       map[string]string
		field, code string
	}{
		{"lat without lon", "customers", map[string]string{"id": "c-1", "lat": "48.4"}, "lon", "missing_value"},
		{"number", "customers", map[string]string{"id": "c-1", "lat": "north", "lon": "9"}, "lat", "invalid_number"},
		{"amount", "products", map[string]string{"id": "p-1", "list_price": "12,50"}, "list_price", "invalid_amount"},
		{"boolean", "products", map[string]string{"id": "p-1", "active": "maybe"}, "active", "invalid_boolean"},
	} {
		if _, rerr := document(importColumns[c.kind], row(c.cells)); rerr == nil || rerr.Field != c.field || rerr.Code != c.code {
			t.Errorf("%s: %+v, want %s %s", c.name, rerr, c.field, c.code)
		}
	}
}
