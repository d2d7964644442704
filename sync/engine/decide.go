package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
)

// prepared is what the engine learned about a mutation before reaching the
// store: its decoded payload, or why it must be rejected.
type prepared struct {
	coll   string
	body   map[string]any             // create: the decoded document
	fields map[string]any             // update: the decoded new values (nil = remove)
	raw    map[string]json.RawMessage // update: the values as sent, for conflict reports
	keys   []string                   // update: field names, sorted for a deterministic merge
	err    error
}

func invalidMutation(pointer, format string, args ...any) *Error {
	return Errorf(KindInvalid, CodeInvalidMutation, pointer, format, args...)
}

// prepare checks everything about m that does not depend on stored state.
func (e *Engine) prepare(actor Actor, m *Mutation, trusted bool) (*prepared, error) {
	if m.bad != nil {
		return nil, m.bad
	}
	if !trusted && !m.canonical {
		if err := checkPayload(m); err != nil {
			return nil, err
		}
	}
	if !idPattern.MatchString(m.ID) {
		return nil, invalidMutation("/mutation_id", "mutation_id must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	}
	if !e.schemas.Has(m.Collection) {
		return nil, Errorf(KindInvalid, CodeUnknownCollection, "/collection", "unknown collection %q", m.Collection)
	}
	if !idPattern.MatchString(m.DocID) {
		return nil, invalidMutation("/id", "id must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	}
	if m.BaseVersion < 0 {
		return nil, Errorf(KindInvalid, CodeBadBaseVersion, "/base_version", "base_version must not be negative")
	}
	p := &prepared{coll: m.Collection}
	switch m.Op {
	case OpCreate:
		if m.Fields != nil {
			return nil, invalidMutation("/fields", "a create carries doc, not fields")
		}
		if m.BaseVersion != 0 {
			return nil, Errorf(KindInvalid, CodeBadBaseVersion, "/base_version", "a create has no base_version")
		}
		if len(m.Doc) > e.limits.MaxDocBytes {
			return nil, Errorf(KindInvalid, CodeDocumentTooLarge, "/doc", "document is %d bytes, the limit is %d", len(m.Doc), e.limits.MaxDocBytes)
		}
		body, err := decodeObject(m.Doc)
		if err != nil {
			return nil, invalidMutation("/doc", "doc must be a JSON object")
		}
		if !trusted {
			if err := e.rules.Check(actor, m, body, nil); err != nil {
				return nil, err
			}
		}
		if v := e.schemas.Validate(m.Collection, body); v != nil {
			return nil, Errorf(KindInvalid, CodeSchemaViolation, "/doc"+v.Pointer, "%s", v.Message)
		}
		p.body = body
	case OpUpdate:
		if m.Doc != nil {
			return nil, invalidMutation("/doc", "an update carries fields, not doc")
		}
		if len(m.Fields) == 0 {
			return nil, invalidMutation("/fields", "an update needs at least one field")
		}
		if m.BaseVersion < 1 {
			return nil, Errorf(KindInvalid, CodeBadBaseVersion, "/base_version", "an update needs the base_version it was edited from (1 or more)")
		}
		size := 0
		p.fields = make(map[string]any, len(m.Fields))
		p.raw = m.Fields
		for k, raw := range m.Fields {
			size += len(k) + len(raw)
			v, err := decodeValue(raw)
			if err != nil {
				return nil, invalidMutation("/fields/"+escapePointer(k), "field value is not valid JSON")
			}
			p.fields[k] = v
			p.keys = append(p.keys, k)
		}
		if size > e.limits.MaxDocBytes {
			return nil, Errorf(KindInvalid, CodeDocumentTooLarge, "/fields", "fields are %d bytes, the limit is %d", size, e.limits.MaxDocBytes)
		}
		sort.Strings(p.keys)
		if !trusted {
			if err := e.rules.Check(actor, m, nil, p.fields); err != nil {
				return nil, err
			}
		}
	case OpDelete:
		if m.Doc != nil || m.Fields != nil {
			return nil, invalidMutation("/op", "a delete carries neither doc nor fields")
		}
	default:
		return nil, invalidMutation("/op", "op must be create, update or delete, got %q", m.Op)
	}
	return p, nil
}

// decide applies the conflict rules of docs/protocol.md to one mutation,
// and the batch's rules to what they let through. device identifies the
// writer (user and device) in the field history.
func (e *Engine) decide(acc *access, device string, m *Mutation, p *prepared, cur *Document, res *resolution, fx *effects, trusted bool) (*Document, Outcome) {
	if p.err != nil {
		return nil, reject(m.ID, p.err)
	}
	if err := res.batch.Refused(m); err != nil {
		return nil, reject(m.ID, err)
	}
	actor := acc.actor
	if cur != nil && !trusted && !acc.sees(cur) {
		// Another user's document: same answer whatever the operation, and
		// no hint of its content.
		if m.Op == OpCreate {
			return nil, reject(m.ID, Errorf(KindConflict, CodeAlreadyExists, "/id", "%s/%s already exists", m.Collection, m.DocID))
		}
		return nil, reject(m.ID, Errorf(KindForbidden, CodeForbidden, "/id", "%s/%s is not in your scope", m.Collection, m.DocID))
	}
	d := &decision{e: e, m: m, p: p, res: res, fx: fx, device: device, w: &Write{Mutation: m, Actor: actor, Reports: acc.reports,
		Server: trusted, Cur: cur, Sees: acc.seesKeys, Now: e.now().UTC()}}
	switch m.Op {
	case OpCreate:
		return d.create()
	case OpDelete:
		return d.delete()
	}
	return d.update()
}

// decision is one mutation being decided.
type decision struct {
	e      *Engine
	m      *Mutation
	p      *prepared
	w      *Write
	res    *resolution
	fx     *effects
	device string
}

// create decides a create: the rules' checks and derived fields, the new
// document's keys.
func (d *decision) create() (*Document, Outcome) {
	e, m, p, w, res := d.e, d.m, d.p, d.w, d.res
	if w.Cur != nil {
		return nil, reject(m.ID, Errorf(KindConflict, CodeAlreadyExists, "/id", "%s/%s already exists", m.Collection, m.DocID))
	}
	w.Body = p.body
	parent, hasParent := e.rules.Parent(m.Collection, p.body)
	inUnit := true // the parent was read in the store's unit (or there is none)
	if hasParent {
		w.Parent, inUnit = res.parents[parent]
	}
	w.ParentRead = true
	if err := res.batch.Decide(w); err != nil {
		return nil, reject(m.ID, err)
	}
	body := m.Doc
	if w.Changed {
		b, err := json.Marshal(p.body)
		if err != nil {
			return nil, reject(m.ID, err)
		}
		body = b
	}
	fields := make(map[string]FieldMeta, len(p.body))
	for k := range p.body {
		fields[k] = FieldMeta{Version: 1, Device: d.device}
	}
	next := &Document{
		Org: w.Actor.Org, Collection: m.Collection, ID: m.DocID, Owner: w.Actor.User, Version: 1,
		Body: compactJSON(body), Fields: fields, UpdatedAt: w.Now, UpdatedBy: w.Actor.User, Scopes: w.Keys,
	}
	res.wrote(next)
	if hasParent {
		d.fx.stampedFrom(next, parent, e.rules.Inherited(w.Parent), inUnit && res.serializable)
	}
	d.fx.note(e.rules, nil, next, p.body)
	return next, Outcome{MutationID: m.ID, Status: StatusApplied, Version: 1}
}

// delete decides a delete: a tombstone, if the rules let the writer.
func (d *decision) delete() (*Document, Outcome) {
	m, w, cur := d.m, d.w, d.w.Cur
	if cur == nil {
		return nil, reject(m.ID, Errorf(KindNotFound, CodeNotFound, "/id", "%s/%s does not exist", m.Collection, m.DocID))
	}
	if !cur.Deleted {
		if !w.Server {
			body, err := decodeObject(cur.Body)
			if err != nil {
				return nil, reject(m.ID, err)
			}
			w.Before = body
		}
		if err := d.res.batch.Decide(w); err != nil {
			return nil, reject(m.ID, err)
		}
	}
	if m.BaseVersion > cur.Version {
		return nil, reject(m.ID, Errorf(KindInvalid, CodeBadBaseVersion, "/base_version",
			"base_version %d is newer than the server's version %d", m.BaseVersion, cur.Version))
	}
	if cur.Deleted {
		return nil, Outcome{MutationID: m.ID, Status: StatusApplied, Version: cur.Version}
	}
	next := *cur
	next.Version = cur.Version + 1
	next.Deleted = true
	next.Body = nil
	next.UpdatedAt, next.UpdatedBy = w.Now, w.Actor.User
	return &next, Outcome{MutationID: m.ID, Status: StatusApplied, Version: next.Version}
}

// update decides an update: field by field against the device's base
// version (docs/protocol.md), then the rules.
func (d *decision) update() (*Document, Outcome) {
	e, m, p, w, res, fx, device := d.e, d.m, d.p, d.w, d.res, d.fx, d.device
	cur, trusted := w.Cur, w.Server
	if cur == nil {
		return nil, reject(m.ID, Errorf(KindNotFound, CodeNotFound, "/id", "%s/%s does not exist", m.Collection, m.DocID))
	}
	if cur.Deleted {
		return nil, reject(m.ID, Errorf(KindConflict, CodeDocumentDeleted, "/id", "%s/%s was deleted", m.Collection, m.DocID))
	}
	if m.BaseVersion > cur.Version {
		return nil, reject(m.ID, Errorf(KindInvalid, CodeBadBaseVersion, "/base_version",
			"base_version %d is newer than the server's version %d", m.BaseVersion, cur.Version))
	}
	body, err := decodeObject(cur.Body)
	if err != nil {
		return nil, reject(m.ID, err)
	}
	// Another device changed something after the device's base: the device
	// must learn the resulting document even without a same-field conflict.
	concurrent := false
	for _, meta := range cur.Fields {
		if meta.Version > m.BaseVersion && meta.Device != device {
			concurrent = true
			break
		}
	}
	var conflicts []Conflict
	var applied []string
	for _, k := range p.keys {
		if meta, ok := cur.Fields[k]; ok && meta.Version > m.BaseVersion && meta.Device != device {
			// The value already committed wins; report the device's value.
			kept, _ := json.Marshal(body[k])
			conflicts = append(conflicts, Conflict{Field: k, Yours: p.raw[k], Kept: kept, KeptVersion: meta.Version})
			continue
		}
		applied = append(applied, k)
	}
	w.Before, w.Written, w.Applied, w.Fields = body, p.keys, applied, p.fields
	if len(applied) > 0 {
		w.Before = maps.Clone(body) // top-level values are replaced, never changed in place
		for _, k := range applied {
			if p.fields[k] == nil {
				delete(body, k)
			} else {
				body[k] = p.fields[k]
			}
		}
	}
	w.Body = body
	// The server's own writes and documents without a parent compute every
	// key; a device's update keeps the parent's part (the fields naming a
	// parent are fixed), and so does a server write whose parent the push
	// did not read.
	parent, hasParent := e.rules.Parent(m.Collection, body)
	switch {
	case !hasParent:
		w.ParentRead = true
	case trusted:
		w.Parent, w.ParentRead = res.parents[parent]
	}
	if err := res.batch.Decide(w); err != nil {
		return nil, reject(m.ID, err)
	}
	if len(applied) == 0 {
		return nil, Outcome{MutationID: m.ID, Status: StatusMerged, Version: cur.Version, Doc: cur.Body, Conflicts: conflicts}
	}
	if v := e.schemas.Validate(m.Collection, body); v != nil {
		return nil, reject(m.ID, Errorf(KindInvalid, CodeSchemaViolation, "/fields"+v.Pointer, "%s", v.Message))
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, reject(m.ID, err)
	}
	if len(raw) > e.limits.MaxDocBytes {
		return nil, reject(m.ID, Errorf(KindInvalid, CodeDocumentTooLarge, "/fields",
			"the document would be %d bytes, the limit is %d", len(raw), e.limits.MaxDocBytes))
	}
	next := *cur
	next.Version = cur.Version + 1
	next.Body = raw
	next.Fields = make(map[string]FieldMeta, len(cur.Fields)+len(applied))
	for k, meta := range cur.Fields {
		next.Fields[k] = meta
	}
	for _, k := range append(applied, w.Derived...) {
		// A removed field keeps its meta too, so a stale write of it is
		// still detected as a conflict.
		next.Fields[k] = FieldMeta{Version: next.Version, Device: device}
	}
	next.Scopes = w.Keys
	res.wrote(&next)
	if hasParent && w.ParentRead {
		fx.stampedFrom(&next, parent, e.rules.Inherited(w.Parent), res.serializable)
	}
	fx.note(e.rules, cur, &next, body)
	next.UpdatedAt, next.UpdatedBy = w.Now, w.Actor.User
	if concurrent || len(conflicts) > 0 {
		return &next, Outcome{MutationID: m.ID, Status: StatusMerged, Version: next.Version, Doc: raw, Conflicts: conflicts}
	}
	return &next, Outcome{MutationID: m.ID, Status: StatusApplied, Version: next.Version}
}

func decodeObject(raw []byte) (map[string]any, error) {
	v, err := decodeValue(raw)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return obj, nil
}

// decodeValue decodes one JSON value, keeping numbers exact.
func decodeValue(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after JSON value")
	}
	return v, nil
}

// checkPayload holds a device's mutation that did not come through the
// push's own decoding (an adapter's, built from WatermelonDB rows or RxDB
// documents) to the same canonical JSON: whatever the transport, no invalid
// UTF-8, duplicate key or unrepresentable number is stored and served.
func checkPayload(m *Mutation) *Error {
	if len(m.Doc) > 0 {
		if err := CheckCanonical(m.Doc, "/doc"); err != nil {
			return err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.Fields)) {
		if err := CheckCanonical(m.Fields[k], "/fields/"+escapePointer(k)); err != nil {
			return err
		}
	}
	return nil
}

// escapePointer escapes one JSON pointer token (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
