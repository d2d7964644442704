// Package schemas holds the JSON Schemas (draft 2020-12) of every synced
// collection, embedded in the binary, and validates documents against them
// with santhosh-tekuri/jsonschema. It implements sync.Validator.
//
// Write rules are annotations on top-level properties:
//
//	"readOnly": true                       only the server sets the field
//	"x-fieldsync-writable-by": [roles]     only callers holding one of the roles may set it
//	"x-fieldsync-client-values": [values]  the only values a device may write
//
// It must not import HTTP or store packages.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	engine "github.com/fieldsync/fieldsync/sync"
)

//go:embed *.json
var files embed.FS

var _ engine.Validator = (*Set)(nil)

// Set is the compiled schemas of protocol version 1.
type Set struct {
	schemas map[string]*jsonschema.Schema
	rules   map[string]map[string]engine.FieldRule
	names   []string
	doc     []byte
}

var printer = message.NewPrinter(language.English)

// Load compiles every embedded schema.
func Load() (*Set, error) {
	entries, err := files.ReadDir(".")
	if err != nil {
		return nil, err
	}
	s := &Set{schemas: map[string]*jsonschema.Schema{}, rules: map[string]map[string]engine.FieldRule{}}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	raws := map[string]json.RawMessage{}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".json")
		raw, err := files.ReadFile(e.Name())
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", e.Name(), err)
		}
		url := "mem:///" + e.Name()
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", e.Name(), err)
		}
		sch, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("schemas: compile %s: %w", e.Name(), err)
		}
		rules, err := extractRules(raw)
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", e.Name(), err)
		}
		s.schemas[name], s.rules[name] = sch, rules
		s.names = append(s.names, name)
		raws[name] = raw
	}
	sort.Strings(s.names)
	s.doc, err = json.Marshal(struct {
		Version     int                        `json:"version"`
		Collections map[string]json.RawMessage `json:"collections"`
	}{engine.ProtocolVersion, raws})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// extractRules reads the write annotations of the top-level properties.
func extractRules(raw []byte) (map[string]engine.FieldRule, error) {
	var sch struct {
		Properties map[string]struct {
			ReadOnly     bool     `json:"readOnly"`
			WritableBy   []string `json:"x-fieldsync-writable-by"`
			ClientValues []string `json:"x-fieldsync-client-values"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &sch); err != nil {
		return nil, err
	}
	rules := map[string]engine.FieldRule{}
	for name, p := range sch.Properties {
		if p.ReadOnly || len(p.WritableBy) > 0 || len(p.ClientValues) > 0 {
			rules[name] = engine.FieldRule{ServerOnly: p.ReadOnly, WritableBy: p.WritableBy, ClientValues: p.ClientValues}
		}
	}
	return rules, nil
}

// Has reports whether collection is synced.
func (s *Set) Has(collection string) bool { _, ok := s.schemas[collection]; return ok }

// Collections lists the synced collections, sorted.
func (s *Set) Collections() []string { return slices.Clone(s.names) }

// Rules implements sync.Validator.
func (s *Set) Rules(collection string) map[string]engine.FieldRule { return s.rules[collection] }

// JSON is the document served at GET /v1/schemas.
func (s *Set) JSON() []byte { return s.doc }

// Validate implements sync.Validator. doc must come from encoding/json with
// UseNumber (or from jsonschema.UnmarshalJSON) so numbers keep their precision.
func (s *Set) Validate(collection string, doc map[string]any) *engine.Violation {
	sch, ok := s.schemas[collection]
	if !ok {
		return &engine.Violation{Message: fmt.Sprintf("unknown collection %q", collection)}
	}
	err := sch.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &engine.Violation{Message: err.Error()}
	}
	return violation(ve)
}

// violation reports the first, most specific failure: the deepest leaf of
// the error tree, so "/lines/0/quantity" rather than "/lines".
func violation(ve *jsonschema.ValidationError) *engine.Violation {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	loc := ve.InstanceLocation
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		if len(k.Missing) > 0 {
			loc = append(slices.Clone(loc), k.Missing[0])
		}
	case *kind.AdditionalProperties:
		if len(k.Properties) > 0 {
			loc = append(slices.Clone(loc), k.Properties[0])
		}
	}
	return &engine.Violation{Pointer: pointer(loc), Message: ve.ErrorKind.LocalizedString(printer)}
}

// pointer renders a location as an RFC 6901 JSON pointer.
func pointer(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1"))
	}
	return b.String()
}
