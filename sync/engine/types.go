// Package engine is the fieldsync sync engine: push (exactly-once mutations with
// field-level conflict resolution), pull (a commit-ordered change feed per
// scope with signed checkpoints), and the domain types and error kinds they
// share.
//
// It owns the rules and must not import HTTP, database or Firebase packages:
// storage is reached through the Store interface declared here, schema
// validation through Validator, and transports call Engine.
package engine

import (
	"context"
	"encoding/json"
	"time"
)

// ProtocolVersion is the version of the wire protocol this engine speaks.
const ProtocolVersion = 1

// Op is what a mutation does to a document.
type Op string

const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Actor is the authenticated caller of a push or pull.
type Actor struct {
	Org   string
	User  string
	Roles []string
}

// HasRole reports whether the actor holds role.
func (a Actor) HasRole(role string) bool {
	for _, r := range a.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// Mutation is one client-generated change, as sent by a device.
type Mutation struct {
	ID          string                     `json:"mutation_id"`
	Collection  string                     `json:"collection"`
	DocID       string                     `json:"id"`
	Op          Op                         `json:"op"`
	BaseVersion int64                      `json:"base_version,omitempty"`
	Doc         json.RawMessage            `json:"doc,omitempty"`
	Fields      map[string]json.RawMessage `json:"fields,omitempty"`

	// bad is why the mutation could not be decoded (decode.go), index its
	// position in the push; such a mutation is answered invalid_mutation.
	bad   *Error
	index int
	// canonical is set when the push's decoding already checked the
	// mutation's JSON (decode.go); a mutation built another way, by an
	// adapter from its own wire format, is checked in prepare.
	canonical bool
}

// Outcome statuses.
const (
	StatusApplied  = "applied"
	StatusMerged   = "merged"
	StatusRejected = "rejected"
)

// Outcome is the server's answer for one mutation. It is recorded with the
// mutation so that a retry returns exactly the same answer.
type Outcome struct {
	MutationID string          `json:"mutation_id"`
	Status     string          `json:"status"`
	Version    int64           `json:"version,omitempty"`
	Doc        json.RawMessage `json:"doc,omitempty"`
	Conflicts  []Conflict      `json:"conflicts,omitempty"`
	Error      *ErrorBody      `json:"error,omitempty"`
	// Replayed marks the answer to a mutation the server had already
	// decided (a retry after a lost reply). It carries the recorded status,
	// version and error but never a document or conflicts: since the first
	// answer the device may have pulled a newer state, a delete, or lost
	// the document's scope, and a recorded body would resurrect or leak it.
	// Conflicts keep the field, the device's own value and kept_version.
	// The device keeps what it pulled; its next pull brings what is current.
	Replayed bool `json:"replayed,omitempty"`
	// Index is the mutation's position in the push, given only when the
	// mutation could not be decoded: its mutation_id may be missing.
	Index *int `json:"index,omitempty"`
}

// Conflict reports a field where the device's value was not kept.
type Conflict struct {
	Field       string          `json:"field"`
	Yours       json.RawMessage `json:"yours"`
	Kept        json.RawMessage `json:"kept,omitempty"` // not in a replayed outcome
	KeptVersion int64           `json:"kept_version"`
}

// ErrorBody is the client-facing form of an *Error.
type ErrorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Pointer   string `json:"pointer,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Body returns the client-facing form of e.
func (e *Error) Body() *ErrorBody {
	return &ErrorBody{Code: e.Code, Message: e.Message, Pointer: e.Pointer}
}

// FieldMeta records when and by whom a top-level field last changed.
type FieldMeta struct {
	Version int64  `json:"v"`
	Device  string `json:"d,omitempty"`
}

// Document is the server's copy of a synced record.
type Document struct {
	Org        string
	Collection string
	ID         string
	Owner      string
	Version    int64
	Seq        int64 // commit position; assigned by the store when written
	Deleted    bool
	Body       json.RawMessage
	Fields     map[string]FieldMeta
	// Scopes are the keys under which the document is pulled ("user:<id>"
	// today; team, customer and role keys with access control).
	Scopes    []string
	UpdatedAt time.Time
	UpdatedBy string
	// OriginDevice and OriginMutation name the create that made the
	// document: the engine sets them on a create, stores keep them as first
	// written (an update never changes them), and the engine recognises a
	// retry of that create by them. Stores therefore need not record an
	// applied create's outcome in their mutation log.
	OriginDevice, OriginMutation string
}

// Ops of the pull feed, as they appear on the wire.
const (
	ChangePut    = "put"    // store this version
	ChangeDelete = "delete" // the document was deleted (a tombstone)
	ChangeEvict  = "evict"  // the caller may no longer see the document
)

// Op returns the wire op of a change.
func (c Change) Op() string {
	switch {
	case c.Evicted:
		return ChangeEvict
	case c.Deleted:
		return ChangeDelete
	}
	return ChangePut
}

// Change is one entry of the pull feed.
type Change struct {
	Seq        int64
	Collection string
	ID         string
	Version    int64
	Deleted    bool
	Evicted    bool // the scope that was read no longer holds the document
	Body       json.RawMessage
}

// DocRef names a document within an organisation.
type DocRef struct {
	Collection string
	ID         string
}

func (r DocRef) String() string { return r.Collection + "/" + r.ID }

// PullQuery asks a store for the changes visible under some scope keys.
type PullQuery struct {
	Org      string
	Scopes   []string
	After    int64 // exclusive
	Limit    int   // at most this many changes
	MaxBytes int   // stop after the change that crosses this many body bytes
}

// PullPage is one page of a store's feed.
type PullPage struct {
	Changes []Change
	More    bool // changes remain past the page
	// Through is how far the page reaches: every change under the query's
	// scopes with a seq in (After, Through] is in Changes. It is at least
	// After and at least the last change's seq, and lies further when
	// nothing else under the scopes was committed up to there: a reader of
	// a quiet scope moves forward with the organisation, so its checkpoint
	// never falls behind the history the store keeps (docs/operations.md,
	// "Retention").
	Through int64
	// Compacted says After lies below the history the store keeps
	// (retention.go): the page is empty and the reader must start over
	// from 0. Never set for After 0.
	Compacted bool
}

// PushBatch is a batch of mutations from one device, as handed to a store.
type PushBatch struct {
	Actor     Actor
	Device    string
	Mutations []Mutation
	// Then, when set, returns the server's own writes that follow from the
	// documents the batch wrote (the domain's effects: an order's
	// follow-ups, the role keys they grant). The store calls it inside the
	// atomic unit once the batch's mutations are decided, with the
	// documents decided so far in this round (nil: the round wrote
	// nothing), decides what it returns with the same Decide (indexes
	// continue after every mutation handed to it before) and writes them
	// with the batch: all of a push or none of it is committed. It calls
	// Then again with what those wrote, until Then returns none, at most
	// MaxThenRounds times. The outcomes of these writes are neither
	// recorded nor returned: a retry of the batch is answered from the
	// device's recorded outcomes. An error aborts the whole batch.
	Then func(written []*Document) ([]Mutation, error)
	// Parents are documents the batch's decisions are computed from (the
	// parents its documents hang off, Rules.Parent). The store reads them
	// in its atomic unit, before the first Decide, and hands them to
	// Snapshot (missing ones absent); serializable says that no other
	// write can change them before the unit commits (a single writer), so
	// the engine need not read them again after the commit to check that
	// the keys it computed from them still hold.
	Parents  []DocRef
	Snapshot func(parents map[DocRef]*Document, serializable bool)
}

// MaxThenRounds bounds how often a store calls PushBatch.Then for one batch.
const MaxThenRounds = 4

// Decide is the engine's decision for one mutation whose outcome the store
// has not recorded: given the current document (nil when none), it returns
// the document to write (nil to write nothing) and the outcome. i indexes the
// batch's Mutations. The store calls it inside its atomic unit, in batch
// order, with the state left by the previous mutations of the batch, and may
// call it again for the same mutation with a newer state after losing a race
// (MongoDB). Every field of next is final except Seq, which the store
// assigns. The batch's policy is the engine's, not the store's: mutation ids
// are unique within a batch, and a retried create is answered here from the
// document's origin.
type Decide func(i int, cur *Document) (next *Document, out Outcome)

// Store is what the engine needs from a database. Implementations live in
// their own packages (sqlite, mongodb) and pass the shared contract suite in
// sync/storetest.
type Store interface {
	// Push applies the batch: for every mutation already recorded for
	// (actor.Org, actor.User, device, mutation id) it returns the recorded
	// outcome; for the others it calls decide, writes the result and records
	// the outcome, except an applied create's, which the document's origin
	// records. It returns only once everything is durable.
	Push(ctx context.Context, b PushBatch, decide Decide) ([]Outcome, error)
	// Pull returns changes with Seq > q.After under any of q.Scopes, in Seq
	// order, one per document, bounded by q.Limit and q.MaxBytes, and whether
	// more remain. It never returns a change past one that may still commit
	// with a lower Seq.
	Pull(ctx context.Context, q PullQuery) (PullPage, error)
	// Get returns the stored state (tombstones included) of those of refs
	// that exist in org, read from committed data. Fields (per-field
	// metadata) may be left nil: Get serves reads, never a write decision.
	Get(ctx context.Context, org string, refs []DocRef) (map[DocRef]*Document, error)
	// Secret returns the named server secret, creating it with n random bytes
	// on first use; every server instance on the store sees the same value.
	Secret(ctx context.Context, name string, n int) ([]byte, error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// Violation is a schema failure at a JSON pointer relative to the document.
type Violation struct {
	Pointer string
	Message string
}

// FieldRule says who may write a top-level field of a collection.
type FieldRule struct {
	ServerOnly   bool     // only the server sets it ("readOnly" in the schema)
	WritableBy   []string // if set, only these roles may write it
	ClientValues []string // if set, the only values a device may write
}

// Validator checks documents against the collection schemas. The schemas
// package implements it.
type Validator interface {
	Has(collection string) bool
	// Validate returns nil when doc is valid.
	Validate(collection string, doc map[string]any) *Violation
	// Rules returns the write rules of the collection's top-level fields.
	Rules(collection string) map[string]FieldRule
}

// UpsertDoc is one server-side write (an import row, an admin's assignment):
// the document is created with Fields when missing, or has Fields set.
type UpsertDoc struct {
	Collection string
	ID         string
	Fields     map[string]json.RawMessage
	// CreateOnly writes the document only if it has never existed; one that
	// exists (or was deleted) is left alone and answered "applied" with its
	// version. The workflow's follow-ups: never overwrite the back office.
	CreateOnly bool
	// Expect, when set, is a precondition on the current document, checked
	// atomically with the write (upsert.go).
	Expect *Expect
}
