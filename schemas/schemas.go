// Package schemas holds the JSON Schemas (draft 2020-12) of every synced
// collection, embedded in the binary, and validates documents against them
// with santhosh-tekuri/jsonschema. It implements sync.Validator.
//
// A schema describes the document body (the envelope fields id and version
// are not part of it). Write rules are annotations on top-level properties:
//
//	"readOnly": true                       only the server sets the field
//	"x-fieldsync-writable-by": [roles]     only callers holding one of the roles may set it
//	"x-fieldsync-client-values": [values]  the only values a device may write
//
// Load refuses these annotations anywhere but on a top-level property, since
// the engine enforces them only there.
//
// It must not import HTTP or store packages.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

//go:embed *.json
var files embed.FS

var _ engine.Validator = (*Set)(nil)

const (
	draft2020 = "https://json-schema.org/draft/2020-12/schema"
	// idBase + "<collection>.json" is every schema's $id.
	idBase = "https://fieldsync.dev/schemas/v1/"

	keyReadOnly     = "readOnly"
	keyWritableBy   = "x-fieldsync-writable-by"
	keyClientValues = "x-fieldsync-client-values"
	extPrefix       = "x-fieldsync-"
)

// synced lists the collections of protocol version 1; Load fails unless
// exactly these have a schema.
var synced = []string{
	fieldsales.CollCustomers, fieldsales.CollVisitPlans, fieldsales.CollVisitLogs,
	fieldsales.CollOrders, fieldsales.CollCustomerNotes, fieldsales.CollFollowUps,
	fieldsales.CollProducts, fieldsales.CollPriceLists, engine.CollAttachments,
}

// Set is the compiled schemas of protocol version 1. It is immutable after
// Load and safe for concurrent use.
type Set struct {
	colls map[string]*collection
	names []string // sorted
	doc   []byte   // GET /v1/schemas
}

type collection struct {
	schema *jsonschema.Schema
	rules  map[string]engine.FieldRule
}

// printer renders the library's messages. message.Printer is safe for
// concurrent use (the library itself shares one the same way).
var printer = message.NewPrinter(language.English)

// Load compiles every embedded schema, extracts the write rules and renders
// the GET /v1/schemas document.
func Load() (*Set, error) {
	entries, err := files.ReadDir(".")
	if err != nil {
		return nil, err
	}
	s := &Set{colls: map[string]*collection{}}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // "date-time", "date" and "email" are checked, not just annotations
	bodies := map[string]json.RawMessage{}
	for _, e := range entries {
		file := e.Name()
		name := strings.TrimSuffix(file, ".json")
		raw, err := files.ReadFile(file)
		if err != nil {
			return nil, err
		}
		rules, err := checkSchema(name, raw)
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", file, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", file, err)
		}
		id := idBase + file
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", file, err)
		}
		sch, err := c.Compile(id)
		if err != nil {
			return nil, fmt.Errorf("schemas: compile %s: %w", file, err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", file, err)
		}
		s.colls[name] = &collection{schema: sch, rules: rules}
		s.names = append(s.names, name)
		bodies[name] = compact.Bytes()
	}
	slices.Sort(s.names)
	want := slices.Sorted(slices.Values(synced))
	if !slices.Equal(s.names, want) {
		return nil, fmt.Errorf("schemas: have schemas for %v, want exactly %v", s.names, want)
	}
	s.doc, err = json.Marshal(struct {
		Version     int                        `json:"version"`
		Collections map[string]json.RawMessage `json:"collections"`
	}{engine.ProtocolVersion, bodies})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// checkSchema checks the conventions of a collection schema and returns the
// write rules of its top-level properties.
func checkSchema(name string, raw []byte) (map[string]engine.FieldRule, error) {
	var top struct {
		Schema               string                     `json:"$schema"`
		ID                   string                     `json:"$id"`
		Title                string                     `json:"title"`
		Description          string                     `json:"description"`
		Type                 string                     `json:"type"`
		AdditionalProperties *bool                      `json:"additionalProperties"`
		Properties           map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	switch {
	case top.Schema != draft2020:
		return nil, fmt.Errorf("$schema must be %q", draft2020)
	case top.ID != idBase+name+".json":
		return nil, fmt.Errorf("$id must be %q", idBase+name+".json")
	case top.Title == "" || top.Description == "":
		return nil, errors.New("title and description are required")
	case top.Type != "object":
		return nil, errors.New(`type must be "object"`)
	case top.AdditionalProperties == nil || *top.AdditionalProperties:
		return nil, errors.New("additionalProperties must be false")
	}
	rules := map[string]engine.FieldRule{}
	for field, praw := range top.Properties {
		var p map[string]json.RawMessage
		if err := json.Unmarshal(praw, &p); err != nil {
			return nil, fmt.Errorf("/properties/%s: %w", field, err)
		}
		var r engine.FieldRule
		var enum []string
		for key, v := range p {
			var err error
			switch {
			case key == keyReadOnly:
				err = json.Unmarshal(v, &r.ServerOnly)
			case key == keyWritableBy:
				err = json.Unmarshal(v, &r.WritableBy)
			case key == keyClientValues:
				err = json.Unmarshal(v, &r.ClientValues)
			case key == "enum":
				_ = json.Unmarshal(v, &enum) // only string enums matter below
			case strings.HasPrefix(key, extPrefix):
				err = errors.New("unknown annotation")
			default:
				var sub any
				if err = json.Unmarshal(v, &sub); err == nil {
					err = noNestedRules(sub)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("/properties/%s/%s: %w", field, key, err)
			}
		}
		for _, cv := range r.ClientValues {
			if enum != nil && !slices.Contains(enum, cv) {
				return nil, fmt.Errorf("/properties/%s: client value %q is not in the enum", field, cv)
			}
		}
		if r.ServerOnly || len(r.WritableBy) > 0 || len(r.ClientValues) > 0 {
			rules[field] = r
		}
	}
	return rules, nil
}

// noNestedRules rejects write annotations below the top-level properties,
// where the engine would silently not enforce them.
func noNestedRules(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == keyReadOnly || strings.HasPrefix(k, extPrefix) {
				return fmt.Errorf("%q is allowed only on top-level properties", k)
			}
			if err := noNestedRules(x); err != nil {
				return err
			}
		}
	case []any:
		for _, x := range v {
			if err := noNestedRules(x); err != nil {
				return err
			}
		}
	}
	return nil
}

// Has reports whether collection is synced.
func (s *Set) Has(collection string) bool {
	_, ok := s.colls[collection]
	return ok
}

// Collections lists the synced collections, sorted.
func (s *Set) Collections() []string { return slices.Clone(s.names) }

// Rules returns the write rules of the collection's top-level fields; fields
// without a rule are absent. The map is the caller's own copy.
func (s *Set) Rules(collection string) map[string]engine.FieldRule {
	c, ok := s.colls[collection]
	if !ok {
		return nil
	}
	out := maps.Clone(c.rules)
	for k, r := range out {
		r.WritableBy = slices.Clone(r.WritableBy)
		r.ClientValues = slices.Clone(r.ClientValues)
		out[k] = r
	}
	return out
}

// JSON returns the document served at GET /v1/schemas:
// {"version":1,"collections":{"<name>":<schema>,...}}. The slice is the
// caller's own copy.
func (s *Set) JSON() []byte { return bytes.Clone(s.doc) }

// Validate checks doc against the collection's schema and returns nil when it
// is valid. Otherwise the violation names the most specific failing location
// as a JSON pointer relative to the document ("/lines/0/quantity"; for a
// missing or unknown property, that property's pointer). doc should come from
// encoding/json with UseNumber, so numbers are json.Number and keep their
// precision; float64 and Go integers work too.
func (s *Set) Validate(collection string, doc map[string]any) *engine.Violation {
	c, ok := s.colls[collection]
	if !ok {
		return &engine.Violation{Message: fmt.Sprintf("unknown collection %q", collection)}
	}
	err := c.schema.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		// A value that is not JSON (a Go struct, a channel): not a wire input.
		return &engine.Violation{Message: err.Error()}
	}
	return violation(ve)
}

// violation picks the most specific failure of the error tree: the leaf
// whose location is deepest, ties broken by the smaller pointer so the answer
// does not depend on map iteration order inside the validator.
func violation(root *jsonschema.ValidationError) *engine.Violation {
	var best []string
	var bestErr *jsonschema.ValidationError
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		loc := leafLocation(e)
		if bestErr == nil || len(loc) > len(best) || (len(loc) == len(best) && slices.Compare(loc, best) < 0) {
			best, bestErr = loc, e
		}
	}
	walk(root)
	if bestErr == nil { // cannot happen: a failed validation has a leaf
		return &engine.Violation{Message: "invalid document"}
	}
	return &engine.Violation{Pointer: pointer(best), Message: leafMessage(bestErr, best)}
}

// leafLocation is where a leaf error points. Required and
// additionalProperties fail at the object; the pointer names the property.
func leafLocation(e *jsonschema.ValidationError) []string {
	var prop string
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		if len(k.Missing) == 0 {
			return e.InstanceLocation
		}
		prop = k.Missing[0] // schema order of "required"
	case *kind.AdditionalProperties:
		if len(k.Properties) == 0 {
			return e.InstanceLocation
		}
		prop = slices.Min(k.Properties) // the validator lists them in map order
	default:
		return e.InstanceLocation
	}
	return append(slices.Clip(e.InstanceLocation), prop)
}

func leafMessage(e *jsonschema.ValidationError, loc []string) string {
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		if len(loc) > len(e.InstanceLocation) {
			return fmt.Sprintf("missing required property %q", loc[len(loc)-1])
		}
	case *kind.AdditionalProperties:
		if len(loc) > len(e.InstanceLocation) {
			return fmt.Sprintf("property %q is not allowed", loc[len(loc)-1])
		}
	case *kind.Type:
		return fmt.Sprintf("must be of type %s, got %s", strings.Join(k.Want, " or "), k.Got)
	case *kind.MinLength:
		if k.Want == 1 {
			return "must not be empty"
		}
		return fmt.Sprintf("must be at least %d characters long, got %d", k.Want, k.Got)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters long, got %d", k.Want, k.Got)
	case *kind.MinItems:
		if k.Want == 1 {
			return "must not be empty"
		}
		return fmt.Sprintf("must have at least %d items, got %d", k.Want, k.Got)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items, got %d", k.Want, k.Got)
	case *kind.Minimum:
		return fmt.Sprintf("must be at least %s, got %s", ratString(k.Want), ratString(k.Got))
	case *kind.Maximum:
		return fmt.Sprintf("must be at most %s, got %s", ratString(k.Want), ratString(k.Got))
	case *kind.ExclusiveMinimum:
		return fmt.Sprintf("must be greater than %s, got %s", ratString(k.Want), ratString(k.Got))
	case *kind.ExclusiveMaximum:
		return fmt.Sprintf("must be less than %s, got %s", ratString(k.Want), ratString(k.Got))
	case *kind.MultipleOf:
		return fmt.Sprintf("must be a multiple of %s (no more decimals), got %s", ratString(k.Want), ratString(k.Got))
	}
	// Enum, pattern, format, uniqueItems: the library's wording is clear, but
	// it quotes the value, which may be long.
	return truncate(e.ErrorKind.LocalizedString(printer), maxMessage)
}

// maxMessage bounds a message that quotes the offending value; it ends up in
// the mutation's recorded outcome.
const maxMessage = 300

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// ratString renders a number plainly: "100", "-0.01", "1e-24" (the library's
// printer would write "10,000" and "1×10⁻²⁴").
func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// pointer renders a location as an RFC 6901 JSON pointer ("" is the root).
func pointer(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1"))
	}
	return b.String()
}
