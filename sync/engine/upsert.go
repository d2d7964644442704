package engine

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
)

// Upsert applies server-side writes as actor (an admin, or the system for
// imports and connectors): each document is created when missing or has
// the given fields set. It is idempotent: writing values a document already
// holds changes nothing and is answered "applied" with the current version.
// source names the writer in field history ("import", "admin"). Server-side
// writes may set read-only fields; they are still validated by the schemas.
// A write that changes what a parent passes on (a customer's assigned_reps)
// moves every document hanging off it to the new keys; a write the rules
// name in Recheck always re-checks them, so repeating an assignment repairs
// one that a crash interrupted.
func (e *Engine) Upsert(ctx context.Context, actor Actor, source string, docs []UpsertDoc) ([]Outcome, error) {
	return e.upsert(ctx, actor, source, docs, nil)
}

func (e *Engine) upsert(ctx context.Context, actor Actor, source string, docs []UpsertDoc, plan EffectPlan) ([]Outcome, error) {
	device := "server:" + source
	if !idPattern.MatchString(device) {
		return nil, Errorf(KindInvalid, CodeInvalidRequest, "/source", "source must be 1-120 characters of A-Z a-z 0-9 _ . : -")
	}
	if len(docs) > e.limits.MaxMutations {
		return nil, Errorf(KindTooLarge, CodeTooManyMutations, "", "at most %d documents per upsert, got %d", e.limits.MaxMutations, len(docs))
	}
	refs := make([]DocRef, len(docs))
	for i, d := range docs {
		refs[i] = DocRef{Collection: d.Collection, ID: d.ID}
	}
	cur, err := e.store.Get(ctx, actor.Org, refs)
	if err != nil {
		return nil, err
	}
	outcomes := make([]Outcome, len(docs))
	var muts []Mutation
	var idx []int
	var parents, recheck []DocRef
	guards := map[string]UpsertDoc{} // mutation id -> its document, for the atomic re-check
	for i, d := range docs {
		c := cur[refs[i]]
		mid := source + "-" + randomID()
		// The pre-read answers most CreateOnly and Expect cases without a
		// write; the guard re-checks them inside the store's atomic unit.
		if out, stop := d.precheck(mid, c); stop {
			outcomes[i] = out
			continue
		}
		if d.CreateOnly || d.Expect != nil {
			guards[mid] = d
		}
		if e.rules.Recheck(d.Collection, d.Fields) {
			recheck = append(recheck, refs[i])
		}
		m, out, done := d.mutation(mid, c) // effects.go
		if done {
			outcomes[i] = out
			continue
		}
		if m.Op == OpUpdate {
			body, err := decodeObject(c.Body)
			if err != nil {
				return nil, err
			}
			if p, ok := e.rules.Parent(d.Collection, body); ok {
				parents = append(parents, p)
			}
		}
		muts = append(muts, m)
		idx = append(idx, i)
	}
	acc := &access{actor: actor, all: true}
	if len(muts) > 0 {
		tr := &trust{parents: parents, plan: plan}
		if len(guards) > 0 {
			tr.guard = func(m *Mutation, cur *Document) (Outcome, bool) {
				d, ok := guards[m.ID]
				if !ok {
					return Outcome{}, false
				}
				return d.precheck(m.ID, cur)
			}
		}
		got, err := e.push(ctx, acc, device, muts, tr)
		if err != nil {
			return nil, err
		}
		for j, o := range got {
			outcomes[idx[j]] = o
		}
	}
	for _, p := range recheck {
		refs, err := e.attached(ctx, actor.Org, p)
		if err != nil {
			return nil, err
		}
		if err := e.restamp(ctx, actor.Org, refs, nil); err != nil {
			return nil, err
		}
	}
	return outcomes, nil
}

// sameValue reports whether a decoded stored value equals a raw new one.
func sameValue(old any, raw json.RawMessage) bool {
	v, err := decodeValue(raw)
	if err != nil {
		return false
	}
	a, err1 := json.Marshal(canonical(old))
	b, err2 := json.Marshal(canonical(v))
	return err1 == nil && err2 == nil && string(a) == string(b)
}

// canonical orders object keys so that equal values marshal equally
// (encoding/json already sorts map keys; this only recurses).
func canonical(v any) any {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make(map[string]any, len(t))
		for _, k := range keys {
			out[k] = canonical(t[k])
		}
		return out
	case []any:
		return slices.Clone(t)
	}
	return v
}

// CodePreconditionFailed answers a server write whose Expect did not hold:
// the document changed since the caller decided to write it.
const CodePreconditionFailed = "precondition_failed"

// Expect is a precondition of a server write: the document exists and its
// top-level Field is a string in In ("" in In also accepts the field being
// absent). The workflow's conditional moves ("only while the order is still
// submitted") use it, so two writers racing cannot both move a document.
// Version, when not 0, also requires the document to be at that version:
// a write computed from what the document held (an appended history entry)
// then cannot overwrite a change made since it was read; the caller reads
// again and retries.
type Expect struct {
	Field   string
	In      []string
	Version int64
}

// holds reports whether the document body meets the expectation.
func (x *Expect) holds(cur *Document) bool {
	if cur == nil || cur.Deleted || (x.Version != 0 && cur.Version != x.Version) {
		return false
	}
	if x.Field == "" {
		return true
	}
	body, err := decodeObject(cur.Body)
	if err != nil {
		return false
	}
	v, ok := body[x.Field]
	if !ok || v == nil {
		return slices.Contains(x.In, "")
	}
	s, isString := v.(string)
	return isString && slices.Contains(x.In, s)
}

// precheck answers d without writing when CreateOnly finds the document
// already there or Expect does not hold (stop true); cur is the document as
// read now (nil: none).
func (d UpsertDoc) precheck(mid string, cur *Document) (Outcome, bool) {
	if d.CreateOnly && cur != nil {
		return Outcome{MutationID: mid, Status: StatusApplied, Version: cur.Version}, true
	}
	if d.Expect != nil && !d.Expect.holds(cur) {
		if d.Expect.Field == "" || (cur != nil && d.Expect.Version != 0 && cur.Version != d.Expect.Version) {
			return reject(mid, Errorf(KindConflict, CodePreconditionFailed, "/version",
				"%s/%s changed since version %d", d.Collection, d.ID, d.Expect.Version)), true
		}
		return reject(mid, Errorf(KindConflict, CodePreconditionFailed, "/fields/"+escapePointer(d.Expect.Field),
			"%s/%s: %s is no longer one of %v", d.Collection, d.ID, d.Expect.Field, d.Expect.In)), true
	}
	return Outcome{}, false
}
