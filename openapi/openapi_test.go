package openapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
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

// The collection schemas in the description are the JSON Schemas, and the
// error code list is every code the sources define.
func TestUpToDate(t *testing.T) {
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
	var d map[string]any
	if err := json.Unmarshal(JSON(), &d); err != nil {
		t.Fatal(err)
	}
	comps := d["components"].(map[string]any)["schemas"].(map[string]any)
	codeSchema := comps["Error"].(map[string]any)["properties"].(map[string]any)["error"].(map[string]any)["properties"].(map[string]any)["code"].(map[string]any)
	codes := errorCodes(t)
	if *update {
		for name, s := range served.Collections {
			comps[name] = s
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
	for name, want := range served.Collections {
		if got := comps[name]; !reflect.DeepEqual(got, want) {
			t.Errorf("components.schemas.%s differs from schemas/%s.json: go test ./openapi -run TestUpToDate -update", name, name)
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
