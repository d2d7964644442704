package engine

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Rules are what documents mean to the application: who reads them (their
// scope keys), who may write what, and the fields the server derives. The
// engine applies them to every write and knows no domain of its own;
// package fieldsales is the implementation fieldsync runs.
//
// The engine owns the mechanics the rules plug into: versions, field-level
// merge, exactly-once mutations, the read set check (a caller writes only
// what it reads), documents hanging off a parent whose readers read them too
// (their keys follow the parent's, and move when the parent's change), and
// one store write per push.
type Rules interface {
	Scoping
	// Check runs the rules of a device's mutation that need no stored
	// state, before the store's write and in parallel across a batch. body
	// is a create's decoded document, fields an update's decoded values.
	Check(actor Actor, m *Mutation, body, fields map[string]any) error
	// Begin reads, through r, what the decisions of one push need from the
	// store, before its write. The Batch it returns decides inside the
	// store's atomic unit and does no I/O. A Batch that is also an
	// EffectPlan has its writes committed with a device's push (effects.go).
	Begin(ctx context.Context, r Reader, b BatchInfo) (Batch, error)
}

// Scoping computes scope keys (docs/access.md).
type Scoping interface {
	// ReadSet returns the sorted scope keys a user reads, given their
	// roles and the users they lead (Member.Reports).
	ReadSet(actor Actor, reports []string) []string
	// Parent names the document a document hangs off (false: none). Its
	// readers read the document too: the document's keys take Inherited
	// of the parent, and are written again when those change.
	Parent(collection string, body map[string]any) (DocRef, bool)
	// ChildKey is the scope key every document hanging off parent carries
	// (and no other document but the parent): the engine lists a parent's
	// children with it.
	ChildKey(parent DocRef) string
	// Inherited returns the sorted keys a document passes on to the
	// documents hanging off it (nil: a document nothing hangs off).
	Inherited(parent *Document) []string
	// Recheck reports whether a write of these fields of a document of
	// collection checks its children's keys again even when it changes
	// nothing: repeating an assignment repairs one a crash cut short.
	Recheck(collection string, fields map[string]json.RawMessage) bool
	// Keys returns a document's sorted scope keys.
	Keys(k Keying) []string
	// Grants returns the keys a live document grants others (a follow-up
	// granting its role the order it concerns); they are added to those
	// documents with the same write.
	Grants(d *Document, body map[string]any) map[DocRef][]string
}

// Keying is what a document's keys are computed from.
type Keying struct {
	Collection, ID, Owner string
	Body                  map[string]any
	// Prev are the keys the document carries (nil: a create).
	Prev []string
	// Parent is the document's parent as read (nil: none, or missing).
	Parent *Document
	// Own asks only for the keys the document's own fields decide; the
	// parent's part is kept from Prev (a device's update does not read the
	// parent: the parent's fields it names are fixed).
	Own bool
}

// Reader is what Rules.Begin may read, all within the pushing caller's
// organisation.
type Reader interface {
	Get(ctx context.Context, refs []DocRef) (map[DocRef]*Document, error)
	// Scope returns the documents keyed under any of keys (index keys),
	// with their last state there: deleted or evicted ones too.
	Scope(ctx context.Context, keys []string) ([]Change, error)
	// Member is the directory's word on a user (ok false: unknown). It
	// returns ErrNoDirectory when the engine has no directory (tokens
	// minted by the operator's tools only): nobody to ask.
	Member(ctx context.Context, user string) (m Member, ok bool, err error)
}

// ErrNoDirectory is Reader.Member's answer when the engine has no
// directory.
var ErrNoDirectory = errors.New("sync: no directory of users")

// BatchInfo describes one push to Rules.Begin.
type BatchInfo struct {
	Actor   Actor    // roles as the directory says
	Reports []string // the users the actor leads
	// Server marks the server's own writes (Upsert, effects): the rules
	// that bind devices do not apply, and nothing is read for them.
	Server bool
	// Writes are the batch's mutations that passed the checks needing no
	// stored state, with their decoded payloads.
	Writes []Pending
	// DeviceTime is the device's clock when it sent the push (zero:
	// unknown); Received is the server's clock then.
	DeviceTime, Received time.Time
}

// Pending is one mutation of a batch, decoded.
type Pending struct {
	Mutation *Mutation
	Body     map[string]any // a create's document
	Fields   map[string]any // an update's new values (nil: remove)
}

// Batch decides the writes of one push, inside the store's atomic unit.
type Batch interface {
	// Refused returns Begin's refusal of m's payload (a user it names is
	// not one the directory knows), answered before anything else, like
	// Check's.
	Refused(m *Mutation) error
	// Decide applies the rules to one write that the engine's own checks
	// (existence, versions, read set, merge) let through, and sets its
	// keys; an error rejects the mutation.
	Decide(w *Write) error
}

// Write is one write as the engine has decided it so far, for
// Batch.Decide.
type Write struct {
	Mutation *Mutation
	Actor    Actor // the writer, roles as the directory says
	Reports  []string
	Server   bool      // the server's own write: the device rules do not apply
	Cur      *Document // the stored document (nil: a create)
	// Body is a create's document, an update's stored body with the
	// applied fields set (Decide may set server fields in it), nil for a
	// delete.
	Body map[string]any
	// Before is the stored body of an update or delete (a device's delete
	// only; nil for a tombstone).
	Before map[string]any
	// Written are the fields an update carries (sorted), Applied those
	// kept from it (the rest lost to concurrent writes), Fields their new
	// values.
	Written, Applied []string
	Fields           map[string]any
	// Parent is the document's parent as the push read it, when the keys
	// are computed from it (creates, the server's updates, a document
	// without a parent); ParentRead tells whether it was.
	Parent     *Document
	ParentRead bool
	// Sees reports whether the writer reads a document with these keys.
	Sees func(keys []string) bool
	// Now is the server's clock.
	Now time.Time

	// Set by Decide: the document's keys (creates and updates), whether a
	// create's Body changed, and the server fields an update set (field
	// history).
	Keys    []string
	Changed bool
	Derived []string
}

// reader is the Reader of one organisation's push.
type reader struct {
	e   *Engine
	org string
}

func (r reader) Get(ctx context.Context, refs []DocRef) (map[DocRef]*Document, error) {
	return r.e.store.Get(ctx, r.org, refs)
}

func (r reader) Scope(ctx context.Context, keys []string) ([]Change, error) {
	var out []Change
	var after int64
	for {
		pg, err := r.e.store.Pull(ctx, PullQuery{Org: r.org, Scopes: keys, After: after,
			Limit: r.e.limits.MaxPageSize, MaxBytes: 16 << 20})
		if err != nil {
			return nil, err
		}
		if pg.Compacted { // compacted meanwhile (retention.go): read again
			out, after = nil, 0
			continue
		}
		out = append(out, pg.Changes...)
		if !pg.More || pg.Through <= after {
			return out, nil
		}
		after = pg.Through
	}
}

func (r reader) Member(ctx context.Context, user string) (Member, bool, error) {
	if r.e.dir == nil {
		return Member{}, false, ErrNoDirectory
	}
	return r.e.dir.Member(ctx, r.org, user)
}
