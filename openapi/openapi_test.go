package openapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"

	"github.com/fieldsync/fieldsync/schemas"
)

// update rewrites openapi.json's copies of the collection schemas and its
// list of error codes from the sources:
//
//	go test ./openapi -run TestUpToDate -update
var update = flag.Bool("update", false, "rewrite openapi.json's collection schemas and error codes")

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

// errorCodes are the codes the Go sources define (constants named Code...),
// the ones an error body may carry.
func errorCodes(t *testing.T) []string {
	t.Helper()
	def := regexp.MustCompile(`\bCode[A-Za-z]+\s+=\s+"([a-z_]+)"`)
	var codes []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range def.FindAllSubmatch(b, -1) {
			codes = append(codes, string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	codes = append(codes, "conflict") // adapters/watermelondb's rejection of a lost edit
	slices.Sort(codes)
	return slices.Compact(codes)
}

// collectionParts returns what the description derives from the JSON
// Schemas of schemas/ (files, by collection name), by place in the
// document:
//
//   - components.schemas.<collection>: the file itself, $id and all, so a
//     reader and a validator see the JSON Schema the server validates with;
//   - Change: a put's doc is the collection's schema ($ref, chosen by the
//     change's collection with if/then);
//   - Mutation: a create's doc likewise (an update's fields are partial);
//   - Document: any collection's document;
//   - GET /v1/schemas: every collection is in the reply (as a JSON Schema
//     document, not validated as a document of it).
func collectionParts(files map[string]any) map[string]any {
	names := slices.Sorted(maps.Keys(files))
	ref := func(n string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + n} }
	when := func(op, n string) map[string]any {
		return map[string]any{
			"if": map[string]any{"properties": map[string]any{"op": map[string]any{"const": op}, "collection": map[string]any{"const": n}},
				"required": []any{"op", "collection"}},
			"then": map[string]any{"properties": map[string]any{"doc": ref(n)}, "required": []any{"doc"}},
		}
	}
	var anyOf, change, create, listed []any
	props := map[string]any{}
	for _, n := range names {
		anyOf = append(anyOf, ref(n))
		change = append(change, when("put", n))
		create = append(create, when("create", n))
		listed = append(listed, n)
		props[n] = map[string]any{"type": "object", "description": "the JSON Schema (draft 2020-12) of " + n + ", as in components.schemas." + n}
	}
	out := map[string]any{
		"Document.anyOf":     anyOf,
		"Change.allOf":       change,
		"Mutation.allOf":     create,
		"schemas.properties": props,
		"schemas.required":   listed,
	}
	for n, f := range files {
		out["components."+n] = f
	}
	return out
}

// places returns the values in d that collectionParts describes, as
// pointers into d (a get reads, a set writes).
func places(t *testing.T, d map[string]any, files map[string]any) map[string]*place {
	t.Helper()
	obj := func(v any, path ...string) map[string]any {
		for _, k := range path {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("openapi.json: no object at %v", path)
			}
			v = m[k]
		}
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("openapi.json: no object at %v", path)
		}
		return m
	}
	comps := obj(d, "components", "schemas")
	reply := obj(d, "paths", "/v1/schemas", "get", "responses", "200", "content", "application/json", "schema", "properties", "collections")
	out := map[string]*place{
		"Document.anyOf":     {obj(comps, "Document"), "anyOf"},
		"Change.allOf":       {obj(comps, "Change"), "allOf"},
		"Mutation.allOf":     {obj(comps, "Mutation"), "allOf"},
		"schemas.properties": {reply, "properties"},
		"schemas.required":   {reply, "required"},
	}
	for n := range files {
		out["components."+n] = &place{comps, n}
	}
	return out
}

type place struct {
	in  map[string]any
	key string
}

// schemaFiles reads schemas/*.json: the JSON Schemas as committed.
func schemaFiles(t *testing.T) map[string]any {
	t.Helper()
	paths, err := filepath.Glob("../schemas/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("schemas/*.json: %v %v", paths, err)
	}
	out := map[string]any{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".json")] = v
	}
	return out
}

// The parts of the description that come from the JSON Schemas (the
// collection schemas themselves, equal to the files of schemas/ and to what
// GET /v1/schemas serves, and every place a synced document appears) and
// the error code list (every code the sources define) are current.
func TestUpToDate(t *testing.T) {
	files := schemaFiles(t)
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
	if !reflect.DeepEqual(served.Collections, files) {
		t.Fatal("GET /v1/schemas does not serve the files of schemas/ as they are")
	}
	var d map[string]any
	if err := json.Unmarshal(JSON(), &d); err != nil {
		t.Fatal(err)
	}
	codeSchema := d["components"].(map[string]any)["schemas"].(map[string]any)["Error"].(map[string]any)["properties"].(map[string]any)["error"].(map[string]any)["properties"].(map[string]any)["code"].(map[string]any)
	codes := errorCodes(t)
	want := collectionParts(files)
	at := places(t, d, files)
	if *update {
		for k, v := range want {
			at[k].in[at[k].key] = v
		}
		codeSchema["enum"] = codes
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("openapi.json", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	// Round-trip want through JSON so that its slices and maps compare with
	// the decoded document's.
	var wantJSON map[string]any
	b, _ := json.Marshal(want)
	json.Unmarshal(b, &wantJSON)
	for _, k := range slices.Sorted(maps.Keys(wantJSON)) {
		if got := at[k].in[at[k].key]; !reflect.DeepEqual(got, wantJSON[k]) {
			t.Errorf("openapi.json: %s is not what schemas/ makes it: go test ./openapi -run TestUpToDate -update", k)
		}
	}
	// Nothing else in components is a collection schema: every schema with
	// an $id of schemas/ is one of the files.
	for name, c := range d["components"].(map[string]any)["schemas"].(map[string]any) {
		if id, _ := c.(map[string]any)["$id"].(string); id != "" {
			if _, ok := files[name]; !ok {
				t.Errorf("components.schemas.%s has $id %s but no file in schemas/", name, id)
			}
		}
	}
	var listed []string
	for _, c := range codeSchema["enum"].([]any) {
		listed = append(listed, c.(string))
	}
	for _, c := range codes {
		if !slices.Contains(listed, c) {
			t.Errorf("error code %s is not listed in openapi.json: go test ./openapi -run TestUpToDate -update", c)
		}
	}
}
