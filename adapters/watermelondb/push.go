package watermelondb

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/adapters"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// PushBody is WatermelonDB's pushChanges body.
type PushBody struct {
	Changes      map[string]PushTable `json:"changes"`
	LastPulledAt *int64               `json:"lastPulledAt"`
}

// PushTable is one table of a push: raw records with _status and _changed.
type PushTable struct {
	Created []map[string]json.RawMessage `json:"created"`
	Updated []map[string]json.RawMessage `json:"updated"`
	Deleted []string                     `json:"deleted"`
}

// Rejection says why a record of the push was not taken as the device sent
// it; the record is in experimentalRejectedIds too, so WatermelonDB keeps it
// as a local change until the app discards it (docs/integrate.md).
type Rejection struct {
	Table     string            `json:"table"`
	ID        string            `json:"id"`
	Code      string            `json:"code"`
	Message   string            `json:"message"`
	Pointer   string            `json:"pointer,omitempty"`
	Conflicts []engine.Conflict `json:"conflicts,omitempty"`
	// Record is the server's row as the caller sees it, null when the
	// caller sees none: what the app should hold instead.
	Record json.RawMessage `json:"record"`
}

// PushReply is the answer to a push.
type PushReply struct {
	RejectedIDs map[string][]string `json:"experimentalRejectedIds"`
	Rejected    []Rejection         `json:"rejected"`
}

// pending is one record of the push on its way to the engine.
type pending struct {
	table, id string
	kind      string // "create", "update", "delete"
	row       map[string]json.RawMessage
	mut       engine.Mutation
	second    bool // already converted (create<->update) once
}

// Push applies WatermelonDB's pushChanges for device.
func (a *Adapter) Push(ctx context.Context, actor engine.Actor, device string, body PushBody) (*PushReply, error) {
	if !engine.ValidID(device) {
		return nil, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/device_id", "device_id must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	}
	for t := range body.Changes {
		if a.tables[t] == nil {
			return nil, engine.Errorf(engine.KindInvalid, engine.CodeUnknownCollection, "/changes/"+t, "unknown table %s", t)
		}
	}
	reply := &PushReply{RejectedIDs: map[string][]string{}, Rejected: []Rejection{}}
	var todo []*pending
	reject := func(p *pending, e *engine.ErrorBody, conflicts []engine.Conflict) {
		reply.Rejected = append(reply.Rejected, Rejection{Table: p.table, ID: p.id, Code: e.Code, Message: e.Message, Pointer: e.Pointer, Conflicts: conflicts})
	}
	order := tableOrder(body.Changes)
	add := func(p *pending, err *engine.Error) {
		switch {
		case err != nil:
			reject(p, err.Body(), nil)
		case p.kind == "update" && len(p.mut.Fields) == 0:
			// Marked changed without a changed column: nothing to send,
			// and WatermelonDB marks it synced.
		default:
			todo = append(todo, p)
		}
	}
	for _, t := range order {
		for i, row := range body.Changes[t].Created {
			p := &pending{table: t, kind: "create", row: row}
			add(p, a.prepare(p, "/changes/"+t+"/created/"+itoa(i)))
		}
	}
	for _, t := range order {
		for i, row := range body.Changes[t].Updated {
			p := &pending{table: t, kind: "update", row: row}
			add(p, a.prepare(p, "/changes/"+t+"/updated/"+itoa(i)))
		}
	}
	for j := len(order) - 1; j >= 0; j-- {
		t := order[j]
		for _, id := range body.Changes[t].Deleted {
			p := &pending{table: t, id: id, kind: "delete"}
			p.mut = engine.Mutation{ID: adapters.MutationID("wm.d", t, id), Collection: t, DocID: id, Op: engine.OpDelete}
			todo = append(todo, p)
		}
	}
	next := func(p *pending, o engine.Outcome) (*pending, bool) {
		code := ""
		if o.Error != nil {
			code = o.Error.Code
		}
		switch {
		case o.Status == engine.StatusRejected && !p.second && p.kind == "create" && code == engine.CodeAlreadyExists:
			// created of an existing id (a create whose reply was lost,
			// then edited): an update of what differs.
			return a.convert(p, "update"), true
		case o.Status == engine.StatusRejected && !p.second && p.kind == "update" && code == engine.CodeNotFound:
			return a.convert(p, "create"), true
		case o.Status == engine.StatusRejected && p.kind == "delete" && code == engine.CodeNotFound:
			// deleted of a missing id: nothing to do.
		case o.Status == engine.StatusRejected:
			e := o.Error
			if e == nil {
				e = &engine.ErrorBody{Code: engine.CodeInternal, Message: "internal error"}
			}
			reject(p, e, nil)
		case len(o.Conflicts) > 0:
			// Some of the device's values lost to newer ones: the device
			// must take the server's row.
			reject(p, &engine.ErrorBody{Code: "conflict", Message: "a newer value on the server was kept; take the record from the server"}, o.Conflicts)
		}
		return nil, false
	}
	if err := adapters.Run(ctx, a.eng, actor, device, todo, func(p *pending) *engine.Mutation { return &p.mut }, next, "wm.u2"); err != nil {
		return nil, err
	}
	if err := a.attachRows(ctx, actor, reply); err != nil {
		return nil, err
	}
	return reply, nil
}

// prepare turns a raw record into the engine mutation of its kind.
func (a *Adapter) prepare(p *pending, ptr string) *engine.Error {
	c := a.tables[p.table]
	var id string
	if err := json.Unmarshal(p.row["id"], &id); err != nil || id == "" {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidMutation, ptr+"/id", "the record has no string id")
	}
	p.id = id
	base := int64(0)
	if v, ok := p.row[VersionColumn]; ok && !bytes.Equal(v, []byte("null")) {
		if err := json.Unmarshal(v, &base); err != nil || base < 0 {
			return engine.Errorf(engine.KindInvalid, engine.CodeInvalidMutation, ptr+"/"+VersionColumn, "%s must be a non-negative integer", VersionColumn)
		}
	}
	var cols []string
	switch p.kind {
	case "update":
		var changed string
		_ = json.Unmarshal(p.row["_changed"], &changed)
		for _, k := range strings.Split(changed, ",") {
			if k != "" && k != VersionColumn {
				cols = append(cols, k)
			}
		}
	default:
		for k, v := range p.row {
			if k != "id" && k != "_status" && k != "_changed" && k != VersionColumn && !bytes.Equal(v, []byte("null")) {
				cols = append(cols, k)
			}
		}
	}
	slices.Sort(cols)
	fields := make(map[string]json.RawMessage, len(cols))
	for _, col := range cols {
		k := field(col)
		f, ok := c.Field(k)
		if !ok || column(k) != col {
			return engine.Errorf(engine.KindInvalid, engine.CodeSchemaViolation, ptr+"/"+col, "%s has no column %s", p.table, col)
		}
		v, ok := p.row[col]
		if !ok {
			v = json.RawMessage("null")
		}
		if f.Kind == adapters.KindJSON && !bytes.Equal(v, []byte("null")) {
			var s string
			if err := json.Unmarshal(v, &s); err != nil || !json.Valid([]byte(s)) {
				return engine.Errorf(engine.KindInvalid, engine.CodeSchemaViolation, ptr+"/"+col, "%s must be a string of JSON (%s)", col, f.Type)
			}
			if s == "" {
				v = json.RawMessage("null")
			} else {
				v = json.RawMessage(s)
			}
		}
		fields[k] = v
	}
	p.mut = engine.Mutation{Collection: p.table, DocID: id}
	switch p.kind {
	case "create":
		doc := map[string]json.RawMessage{}
		for k, v := range fields {
			if !bytes.Equal(v, []byte("null")) {
				doc[k] = v
			}
		}
		p.mut.Op = engine.OpCreate
		p.mut.Doc, _ = json.Marshal(doc)
		p.mut.ID = adapters.MutationID(mutPrefix(p), p.table, id, doc)
	case "update":
		// A record the device created and has not pulled back yet has no
		// fs_version: its base is the version its create made, 1.
		base = max(base, 1)
		p.mut.Op, p.mut.BaseVersion, p.mut.Fields = engine.OpUpdate, base, fields
		p.mut.ID = adapters.MutationID(mutPrefix(p), p.table, id, base, fields)
	}
	return nil
}

func mutPrefix(p *pending) string {
	prefix := "wm." + p.kind[:1]
	if p.second {
		prefix += "2"
	}
	return prefix
}

// convert turns a created-of-existing into an update of every column it
// carries, or an updated-of-unknown into a create of its full row.
func (a *Adapter) convert(p *pending, kind string) *pending {
	q := &pending{table: p.table, id: p.id, kind: kind, row: p.row, second: true}
	if kind == "update" {
		// Every non-null column, as if each were changed.
		var cols []string
		for k, v := range p.row {
			if k != "id" && k != "_status" && k != "_changed" && k != VersionColumn && !bytes.Equal(v, []byte("null")) {
				cols = append(cols, k)
			}
		}
		slices.Sort(cols)
		row := make(map[string]json.RawMessage, len(p.row)+1)
		for k, v := range p.row {
			row[k] = v
		}
		row["_changed"], _ = json.Marshal(strings.Join(cols, ","))
		q.row = row
	}
	if err := a.prepare(q, ""); err != nil {
		// prepare passed on the same row already; a conversion cannot fail.
		q.mut = p.mut
	}
	return q
}

// attachRows fills in the server's row of every rejected record and lists
// them in experimentalRejectedIds.
func (a *Adapter) attachRows(ctx context.Context, actor engine.Actor, reply *PushReply) error {
	if len(reply.Rejected) == 0 {
		return nil
	}
	refs := make([]engine.DocRef, 0, len(reply.Rejected))
	for _, r := range reply.Rejected {
		if engine.ValidID(r.ID) {
			refs = append(refs, engine.DocRef{Collection: r.Table, ID: r.ID})
		}
	}
	docs, err := a.eng.Visible(ctx, actor, refs)
	if err != nil {
		return err
	}
	for i := range reply.Rejected {
		r := &reply.Rejected[i]
		r.Record = json.RawMessage("null")
		if d := docs[engine.DocRef{Collection: r.Table, ID: r.ID}]; d != nil {
			row, err := a.Row(r.Table, r.ID, d.Version, d.Body)
			if err != nil {
				return err
			}
			r.Record = row
		}
		if !slices.Contains(reply.RejectedIDs[r.Table], r.ID) {
			reply.RejectedIDs[r.Table] = append(reply.RejectedIDs[r.Table], r.ID)
		}
	}
	return nil
}
