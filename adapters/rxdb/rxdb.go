// Package rxdb lets RxDB's replicateServer (the rxdb-server client plugin)
// replicate an RxDB collection with fieldsync, one endpoint per collection:
// pull with a checkpoint and batch size, push of {newDocumentState,
// assumedMasterState} rows answered with the conflicting master states, and
// a pull stream. Every rule is the engine's: the adapter translates.
//
//   - checkpoint: {id, lwt}; id is the engine's opaque checkpoint (which
//     replicateServer sends back as the id query parameter), lwt the feed
//     position it stands for (information only). The engine's feed is one
//     per user across collections: a collection's pull reads it and keeps
//     its own collection's changes, filling the batch unless the feed ends.
//   - documents: the JSON Schema body with id and fs_version (the version
//     the next update is based on); deletes and evictions are
//     {id, _deleted: true}.
//   - push: the changed top-level fields (newDocumentState against
//     assumedMasterState) are one engine update, based on fs_version; a
//     row without assumedMasterState is a create. Refusals and lost
//     same-field edits come back as conflicts: the server's document (or
//     a deleted one), which RxDB's conflict handler resolves.
//
// It must not import HTTP or store packages.
package rxdb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/fieldsync/fieldsync/adapters"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Engine is what the adapter needs from the sync engine.
type Engine = adapters.Engine

// VersionField carries a document's version in an RxDB document.
const VersionField = "fs_version"

// SchemaVersion is the version in the endpoint's path
// (/v1/adapters/rxdb/{collection}/{version}); any other is an outdated
// client, answered 426 as rxdb-server's client expects.
const SchemaVersion = engine.ProtocolVersion

// Adapter serves replicateServer. It is safe for concurrent use.
type Adapter struct {
	eng   Engine
	colls map[string]*adapters.Collection
	names []string
	pulls sharedPulls // the pull streams' (stream.go)
}

// New returns an adapter for the collections of the schemas document.
func New(eng Engine, schemasDoc []byte) (*Adapter, error) {
	colls, err := adapters.Collections(schemasDoc)
	if err != nil {
		return nil, err
	}
	a := &Adapter{eng: eng, colls: map[string]*adapters.Collection{}}
	for _, c := range colls {
		if _, clash := c.Field(VersionField); clash {
			return nil, fmt.Errorf("rxdb: collection %s has a field named %s", c.Name, VersionField)
		}
		a.colls[c.Name] = c
		a.names = append(a.names, c.Name)
	}
	return a, nil
}

// Has reports whether collection is synced.
func (a *Adapter) Has(collection string) bool { return a.colls[collection] != nil }

// CodeStartOver answers a pull whose checkpoint was issued for another read
// set (426, like an outdated client: replicateServer stops and emits
// outdatedClient$; the documented app then drops its collections and
// replicates again).
const CodeStartOver = "read_set_changed"

// ErrStartOver is Pull's answer to a checkpoint of another read set.
var ErrStartOver = engine.Errorf(engine.KindConflict, CodeStartOver, "/id",
	"what you may see changed (a team, a role): drop the local collections and replicate again")

// Checkpoint is replicateServer's checkpoint.
type Checkpoint struct {
	ID  string `json:"id"`
	LWT int64  `json:"lwt"`
}

// PullReply is the answer to a pull and a pull stream message.
type PullReply struct {
	Documents  []json.RawMessage `json:"documents"`
	Checkpoint Checkpoint        `json:"checkpoint"`
}

// Pull returns up to limit documents of collection after checkpoint (the id
// query parameter; "" from the start). It reads the caller's feed until it
// has limit documents or the feed ends: replicateServer takes a short batch
// for the end.
func (a *Adapter) Pull(ctx context.Context, actor engine.Actor, collection, checkpoint string, limit int) (*PullReply, error) {
	max := a.eng.Limits().MaxPageSize
	if limit < 1 || limit > max {
		return nil, engine.Errorf(engine.KindInvalid, engine.CodeLimitOutOfRange, "/limit", "limit must be between 1 and %d, got %d", max, limit)
	}
	out := &PullReply{Documents: []json.RawMessage{}}
	cp := checkpoint
	for {
		res, err := a.eng.Pull(ctx, actor, engine.PullRequest{Checkpoint: cp, Limit: max})
		if err != nil {
			return nil, err
		}
		if res.Reset && checkpoint != "" {
			// What the caller may see changed (a team, a role): RxDB
			// cannot be told which documents to drop, so the app starts
			// over (docs/integrate.md, "start over").
			return nil, ErrStartOver
		}
		seq, fp, err := a.eng.Position(actor, res.Checkpoint)
		if err != nil {
			return nil, err
		}
		for _, ch := range res.Changes {
			if ch.Collection != collection {
				continue
			}
			doc, err := a.Document(ch)
			if err != nil {
				return nil, err
			}
			out.Documents = append(out.Documents, doc)
			if len(out.Documents) == limit {
				// A full batch: the checkpoint is right after this change.
				out.Checkpoint = Checkpoint{ID: a.eng.CheckpointAt(actor, ch.Seq, fp), LWT: ch.Seq}
				return out, nil
			}
		}
		cp = res.Checkpoint
		out.Checkpoint = Checkpoint{ID: cp, LWT: seq}
		if !res.HasMore {
			return out, nil
		}
	}
}

// Document renders a change as an RxDB document.
func (a *Adapter) Document(ch engine.Change) (json.RawMessage, error) {
	if ch.Op() != engine.ChangePut {
		return json.Marshal(map[string]any{"id": ch.ID, "_deleted": true})
	}
	return a.render(ch.Collection, ch.ID, ch.Version, ch.Body)
}

func (a *Adapter) render(collection, id string, version int64, body json.RawMessage) (json.RawMessage, error) {
	doc := map[string]json.RawMessage{}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("rxdb: %s/%s: stored body: %w", collection, id, err)
	}
	doc["id"], _ = json.Marshal(id)
	doc[VersionField], _ = json.Marshal(version)
	doc["_deleted"] = json.RawMessage("false")
	return json.Marshal(doc)
}

// Row is one row of a push.
type Row struct {
	Assumed map[string]json.RawMessage `json:"assumedMasterState"`
	New     map[string]json.RawMessage `json:"newDocumentState"`
}

// notFields are the keys of an RxDB document that are not document fields.
var notFields = []string{"id", VersionField, "_deleted", "_meta", "_rev", "_attachments"}

func isTrue(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("true")) }

type pending struct {
	id, kind string
	row      Row
	mut      engine.Mutation
	second   bool
}

// Push applies replicateServer's push rows for device on collection and
// returns the master states of the rows that conflict.
func (a *Adapter) Push(ctx context.Context, actor engine.Actor, device, collection string, rows []Row) ([]json.RawMessage, error) {
	if !engine.ValidID(device) {
		return nil, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/X-Device-Id", "the X-Device-Id header must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	}
	var todo []*pending
	var conflicted []string
	for i, r := range rows {
		var id string
		if r.New == nil || json.Unmarshal(r.New["id"], &id) != nil || id == "" {
			return nil, engine.Errorf(engine.KindInvalid, engine.CodeInvalidMutation, fmt.Sprintf("/%d/newDocumentState/id", i), "every row needs a newDocumentState with a string id")
		}
		p := &pending{id: id, row: r}
		switch {
		case isTrue(r.New["_deleted"]) && r.Assumed == nil:
			continue // created and deleted on the device: nothing to send
		case isTrue(r.New["_deleted"]):
			p.kind = "delete"
		case r.Assumed == nil || isTrue(r.Assumed["_deleted"]):
			p.kind = "create"
		default:
			p.kind = "update"
		}
		if !a.prepare(collection, p) {
			continue // nothing changed
		}
		todo = append(todo, p)
	}
	next := func(p *pending, o engine.Outcome) (*pending, bool) {
		code := ""
		if o.Error != nil {
			code = o.Error.Code
		}
		switch {
		case o.Status == engine.StatusRejected && !p.second && p.kind == "create" && code == engine.CodeAlreadyExists:
			q := &pending{id: p.id, kind: "update", row: Row{New: p.row.New}, second: true}
			a.prepare(collection, q)
			return q, true
		case o.Status == engine.StatusRejected && !p.second && p.kind == "update" && code == engine.CodeNotFound:
			q := &pending{id: p.id, kind: "create", row: Row{New: p.row.New}, second: true}
			a.prepare(collection, q)
			return q, true
		case o.Status == engine.StatusRejected && p.kind == "delete" && code == engine.CodeNotFound:
		case o.Status == engine.StatusRejected || len(o.Conflicts) > 0:
			conflicted = append(conflicted, p.id)
		}
		return nil, false
	}
	if err := adapters.Run(ctx, a.eng, actor, device, todo, func(p *pending) *engine.Mutation { return &p.mut }, next, "rx.u2"); err != nil {
		return nil, err
	}
	return a.masters(ctx, actor, collection, conflicted)
}

// prepare builds p's mutation; false when there is nothing to send.
func (a *Adapter) prepare(collection string, p *pending) bool {
	fields := map[string]json.RawMessage{}
	for k, v := range p.row.New {
		if !slices.Contains(notFields, k) {
			fields[k] = v
		}
	}
	base := int64(0)
	src := p.row.Assumed
	if src == nil {
		src = p.row.New
	}
	if v, ok := src[VersionField]; ok {
		_ = json.Unmarshal(v, &base)
	}
	p.mut = engine.Mutation{Collection: collection, DocID: p.id}
	prefix := "rx." + p.kind[:1]
	if p.second {
		prefix += "2"
	}
	switch p.kind {
	case "delete":
		p.mut.Op = engine.OpDelete
		p.mut.ID = adapters.MutationID(prefix, collection, p.id)
	case "create":
		p.mut.Op = engine.OpCreate
		p.mut.Doc, _ = json.Marshal(fields)
		p.mut.ID = adapters.MutationID(prefix, collection, p.id, fields)
	case "update":
		changed := fields
		if p.row.Assumed != nil {
			changed = map[string]json.RawMessage{}
			for k, v := range fields {
				if old, ok := p.row.Assumed[k]; !ok || !adapters.JSONEqual(old, v) {
					changed[k] = v
				}
			}
			for k := range p.row.Assumed {
				if _, ok := fields[k]; !ok && !slices.Contains(notFields, k) {
					changed[k] = json.RawMessage("null") // removed on the device
				}
			}
		}
		if len(changed) == 0 {
			return false
		}
		// A document the device created and has not pulled back yet has no
		// fs_version: its base is the version its create made, 1.
		base = max(base, 1)
		p.mut.Op, p.mut.BaseVersion, p.mut.Fields = engine.OpUpdate, base, changed
		p.mut.ID = adapters.MutationID(prefix, collection, p.id, base, changed)
	}
	return true
}

// masters returns the server's documents of ids as the caller sees them; a
// document the caller does not see comes back deleted.
func (a *Adapter) masters(ctx context.Context, actor engine.Actor, collection string, ids []string) ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	if len(ids) == 0 {
		return out, nil
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	refs := make([]engine.DocRef, len(ids))
	for i, id := range ids {
		refs[i] = engine.DocRef{Collection: collection, ID: id}
	}
	docs, err := a.eng.Visible(ctx, actor, refs)
	if err != nil {
		return nil, err
	}
	for _, ref := range refs {
		var doc json.RawMessage
		if d := docs[ref]; d != nil {
			doc, err = a.render(collection, ref.ID, d.Version, d.Body)
		} else {
			doc, err = json.Marshal(map[string]any{"id": ref.ID, "_deleted": true})
		}
		if err != nil {
			return nil, err
		}
		out = append(out, doc)
	}
	return out, nil
}

// Schema returns the RxJsonSchema of collection, generated from its JSON
// Schema: primary key id, the fields as they are, fs_version.
func (a *Adapter) Schema(collection string) (json.RawMessage, bool) {
	c := a.colls[collection]
	if c == nil {
		return nil, false
	}
	props := map[string]json.RawMessage{
		"id":         json.RawMessage(`{"type":"string","maxLength":128}`),
		VersionField: json.RawMessage(`{"type":"integer","minimum":0}`),
	}
	for _, f := range c.Fields {
		props[f.Name] = f.Schema
	}
	b, _ := json.Marshal(map[string]any{
		"title": c.Name, "description": c.Description, "version": 0, "primaryKey": "id", "type": "object",
		"properties": props, "required": []string{"id"},
	})
	return b, true
}

// Schemas returns every collection's RxJsonSchema by name.
func (a *Adapter) Schemas() map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, n := range a.names {
		out[n], _ = a.Schema(n)
	}
	return out
}
