// Package adapters holds what the library adapters share: the tables and
// columns of the synced collections as read from the JSON Schemas, and the
// deterministic mutation ids that let a library's retried push be
// recognised by the engine. The adapters themselves live in
// adapters/watermelondb and adapters/rxdb; the Node projects that drive the
// real libraries in their tests live in adapters/js.
//
// It must not import HTTP or store packages: the adapters translate wire
// formats and call the engine, whose rules they never repeat.
package adapters

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Kind is how a top-level field of a collection travels in a flat row.
type Kind string

const (
	KindString  Kind = "string"
	KindNumber  Kind = "number"
	KindBoolean Kind = "boolean"
	// KindJSON is an object or array: flat-row libraries hold it as a
	// string of JSON.
	KindJSON Kind = "json"
)

// Field is one top-level property of a collection schema.
type Field struct {
	Name       string
	Kind       Kind
	Type       string // the JSON Schema type: string, number, integer, boolean, object, array
	ServerOnly bool   // "readOnly": the server sets it
	Required   bool
	Schema     json.RawMessage // the property's JSON Schema
}

// Collection is a synced collection as the schemas describe it.
type Collection struct {
	Name        string
	Title       string
	Description string
	Fields      []Field // sorted by name
	Schema      json.RawMessage
}

// Field returns the named field.
func (c *Collection) Field(name string) (Field, bool) {
	i, ok := slices.BinarySearchFunc(c.Fields, name, func(f Field, n string) int { return cmp.Compare(f.Name, n) })
	if !ok {
		return Field{}, false
	}
	return c.Fields[i], true
}

// PushOrder is the order in which an adapter hands a library's changes to
// the engine: a document before those that name it (a customer before its
// visits and orders, a visit before the notes taken during it), since the
// engine checks references within a batch in batch order.
var PushOrder = []string{
	"customers", "products", "price_lists", "visit_plans", "visit_logs",
	"orders", "customer_notes", "follow_ups",
}

// Collections reads the GET /v1/schemas document (schemas.Set.JSON) into
// collections sorted by name.
func Collections(schemasDoc []byte) ([]*Collection, error) {
	var doc struct {
		Collections map[string]json.RawMessage `json:"collections"`
	}
	if err := json.Unmarshal(schemasDoc, &doc); err != nil {
		return nil, fmt.Errorf("adapters: schemas document: %w", err)
	}
	var out []*Collection
	for name, raw := range doc.Collections {
		var s struct {
			Title       string                     `json:"title"`
			Description string                     `json:"description"`
			Required    []string                   `json:"required"`
			Properties  map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("adapters: schema %s: %w", name, err)
		}
		c := &Collection{Name: name, Title: s.Title, Description: s.Description, Schema: raw}
		for prop, praw := range s.Properties {
			var p struct {
				Type     any  `json:"type"`
				ReadOnly bool `json:"readOnly"`
			}
			if err := json.Unmarshal(praw, &p); err != nil {
				return nil, fmt.Errorf("adapters: schema %s property %s: %w", name, prop, err)
			}
			typ, ok := p.Type.(string)
			if !ok {
				return nil, fmt.Errorf("adapters: schema %s property %s: type must be one JSON type", name, prop)
			}
			f := Field{Name: prop, Type: typ, ServerOnly: p.ReadOnly, Required: slices.Contains(s.Required, prop), Schema: praw}
			switch typ {
			case "string":
				f.Kind = KindString
			case "number", "integer":
				f.Kind = KindNumber
			case "boolean":
				f.Kind = KindBoolean
			case "object", "array":
				f.Kind = KindJSON
			default:
				return nil, fmt.Errorf("adapters: schema %s property %s: unsupported type %q", name, prop, typ)
			}
			c.Fields = append(c.Fields, f)
		}
		slices.SortFunc(c.Fields, func(a, b Field) int { return cmp.Compare(a.Name, b.Name) })
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Collection) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// MutationID derives a mutation id from what a library pushed, so that the
// same change pushed again (its reply was lost) carries the same id and the
// engine answers it from its record instead of applying it twice. prefix
// names the library and the kind of write; parts are what identifies the
// change (collection, id, base version, fields and values).
func MutationID(prefix string, parts ...any) string {
	b, _ := json.Marshal(parts) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return prefix + "-" + hex.EncodeToString(sum[:20])
}

// JSONEqual compares two JSON values by meaning (key order and spacing
// aside).
func JSONEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// Differing returns the fields whose values differ from the stored body: a
// library's "create" of a document that exists already becomes an update
// of those, since the engine refuses to rewrite fields fixed at creation
// even to their own value. A field absent from body differs unless null.
func Differing(fields map[string]json.RawMessage, body json.RawMessage) map[string]json.RawMessage {
	cur := map[string]json.RawMessage{}
	_ = json.Unmarshal(body, &cur)
	out := map[string]json.RawMessage{}
	for k, v := range fields {
		old, ok := cur[k]
		if !ok {
			old = json.RawMessage("null")
		}
		if !JSONEqual(old, v) {
			out[k] = v
		}
	}
	return out
}

// Engine is what the adapters need from the sync engine: push and pull, the
// caller's read set, checkpoints rebuilt from a library's position, and the
// documents as the caller sees them (to show a refusal).
type Engine interface {
	Push(ctx context.Context, actor engine.Actor, req engine.PushRequest) ([]engine.Outcome, error)
	Pull(ctx context.Context, actor engine.Actor, req engine.PullRequest) (engine.PullResult, error)
	Access(ctx context.Context, actor engine.Actor) (engine.Access, error)
	CheckpointAt(actor engine.Actor, seq int64, fingerprint string) string
	Position(actor engine.Actor, checkpoint string) (int64, string, error)
	Visible(ctx context.Context, actor engine.Actor, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error)
	Limits() engine.Limits
}

// PushAll pushes muts in batches of the engine's MaxMutations (a library
// pushes everything it has at once) and returns the outcomes in order. A
// failure part-way is safe to retry whole: every mutation id is derived from
// its change, so what was applied is answered from the record.
func PushAll(ctx context.Context, eng Engine, actor engine.Actor, device string, muts []engine.Mutation) ([]engine.Outcome, error) {
	max := eng.Limits().MaxMutations
	out := make([]engine.Outcome, 0, len(muts))
	for lo := 0; lo < len(muts); lo += max {
		outs, err := eng.Push(ctx, actor, engine.PushRequest{DeviceID: device, Mutations: muts[lo:min(lo+max, len(muts))]})
		if err != nil {
			return nil, err
		}
		out = append(out, outs...)
	}
	return out, nil
}

// Narrow turns each update of muts, a library's create of a document that
// exists, into an update of the fields that differ from the server's
// document (Differing), with an id derived from that under prefix. It
// reports which mutations are still to be sent: one that differs in nothing
// is done. A document the caller does not see is left for the engine to
// refuse.
func Narrow(ctx context.Context, eng Engine, actor engine.Actor, muts []*engine.Mutation, prefix string) ([]bool, error) {
	send := make([]bool, len(muts))
	var refs []engine.DocRef
	for i, m := range muts {
		send[i] = true
		if m.Op == engine.OpUpdate {
			refs = append(refs, engine.DocRef{Collection: m.Collection, ID: m.DocID})
		}
	}
	if len(refs) == 0 {
		return send, nil
	}
	docs, err := eng.Visible(ctx, actor, refs)
	if err != nil {
		return nil, err
	}
	for i, m := range muts {
		d := docs[engine.DocRef{Collection: m.Collection, ID: m.DocID}]
		if m.Op != engine.OpUpdate || d == nil {
			continue
		}
		m.Fields = Differing(m.Fields, d.Body)
		m.ID = MutationID(prefix, m.Collection, m.DocID, m.BaseVersion, m.Fields)
		send[i] = len(m.Fields) > 0
	}
	return send, nil
}

// Run pushes the mutations of todo (mut gives each one's) and hands every
// outcome to next, which may return a follow-up to push in another round: a
// library's create of an existing document turned into an update (narrowed
// with Narrow under prefix), or an update of an unknown one turned into a
// create. Rounds go on until no follow-up is left.
func Run[P any](ctx context.Context, eng Engine, actor engine.Actor, device string, todo []P,
	mut func(P) *engine.Mutation, next func(P, engine.Outcome) (P, bool), prefix string) error {
	for len(todo) > 0 {
		muts := make([]engine.Mutation, len(todo))
		for i, p := range todo {
			muts[i] = *mut(p)
		}
		outs, err := PushAll(ctx, eng, actor, device, muts)
		if err != nil {
			return err
		}
		var again []P
		var againMuts []*engine.Mutation
		for i, o := range outs {
			if q, ok := next(todo[i], o); ok {
				again = append(again, q)
				againMuts = append(againMuts, mut(q))
			}
		}
		send, err := Narrow(ctx, eng, actor, againMuts, prefix)
		if err != nil {
			return err
		}
		todo = nil
		for i, q := range again {
			if send[i] {
				todo = append(todo, q)
			}
		}
	}
	return nil
}
