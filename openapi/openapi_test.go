package openapi

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/pb33f/libopenapi"

	"github.com/fieldsync/fieldsync/schemas"
)

// The description is a valid OpenAPI 3.1 document.
func TestValidDocument(t *testing.T) {
	t.Parallel()
	d, err := libopenapi.NewDocument(JSON())
	if err != nil {
		t.Fatal(err)
	}
	if v := d.GetVersion(); v != "3.1.0" {
		t.Fatalf("openapi version %q, want 3.1.0", v)
	}
	if _, err := d.BuildV3Model(); err != nil {
		t.Fatalf("build the model: %v", err)
	}
}

// Each synced collection's schema in the description is its JSON Schema.
func TestCollectionSchemasAreTheJSONSchemas(t *testing.T) {
	t.Parallel()
	set, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	var served struct {
		Collections map[string]any `json:"collections"`
	}
	if err := json.Unmarshal(set.JSON(), &served); err != nil {
		t.Fatal(err)
	}
	var d struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(JSON(), &d); err != nil {
		t.Fatal(err)
	}
	for name, want := range served.Collections {
		if got := d.Components.Schemas[name]; !reflect.DeepEqual(got, want) {
			t.Errorf("components.schemas.%s differs from schemas/%s.json: copy it in", name, name)
		}
	}
}
