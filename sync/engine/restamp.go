package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
)

// Scope keys are computed when a document is written, from the document and
// the customer it hangs off. When a customer's reps change, the documents
// attached to it are written again with new keys (a restamp): the store's
// feed then shows them as puts under the new reps' keys and as evictions
// under the old ones. Restamps go through Store.Push like any write, so they
// are atomic per document and need nothing new from the stores.

// trust marks the server's own writes.
type trust struct {
	customers []string // further customers to resolve before the push
	// decide replaces the engine's decision (restamps); nil for Upsert.
	decide func(i int, cur *Document, res *resolution) (*Document, Outcome)
	// guard, when set, may answer a mutation before the engine decides it
	// (stop true: nothing is written). Upsert's CreateOnly and Expect.
	guard func(m *Mutation, cur *Document) (out Outcome, stop bool)
	// plan, when set, is what the write implies (UpsertWith, effects.go).
	plan EffectPlan
}

// systemUser is the writer recorded for the server's own writes.
const systemUser = "fieldsync"

// resolution holds the customers a batch's documents hang off, as read
// before the push, updated by the batch's own writes to them.
type resolution struct {
	customers map[string]customerInfo
	visits    *visitState // visits.go; nil outside a device's push
	// refs are the documents a device's creates name (refs.go), as
	// stored before the push and as created earlier in it.
	refs  map[DocRef]*Document
	batch map[DocRef]map[string]any // the batch's creates, by document
}

func (r *resolution) customer(id string) customerInfo { return r.customers[id] }

func (r *resolution) put(d *Document) { r.customers[d.ID] = infoOf(d) }

func (e *Engine) resolve(ctx context.Context, org string, ids []string) (*resolution, error) {
	res := &resolution{customers: map[string]customerInfo{}}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return res, nil
	}
	refs := make([]DocRef, len(ids))
	for i, id := range ids {
		refs[i] = DocRef{Collection: CollCustomers, ID: id}
	}
	got, err := e.store.Get(ctx, org, refs)
	if err != nil {
		return nil, err
	}
	for ref, d := range got {
		res.customers[ref.ID] = infoOf(d)
	}
	return res, nil
}

// effects are what a batch's writes require afterwards.
type effects struct {
	stamped map[DocRef]stampSource // document -> the customer state its keys were computed from
	moved   map[string]bool        // customers whose reps changed
	grants  map[DocRef][]string    // orders and customers that must carry role keys
	// replayed are documents whose mutation was answered from its recorded
	// outcome (a retry): their keys are checked again from scratch, since
	// the settle of the push that wrote them may have been cut short.
	replayed []DocRef
}

// stampSource is the customer a document's keys were computed from, as the
// computation saw it. settle compares it with the customer as it is after
// the push; it must be kept per document, not looked up in the resolution
// again afterwards: a later write of the same batch to that customer
// updates the resolution (resolution.put), and comparing against that would
// take a document stamped from the pre-read for one stamped from the write
// (docs/access.md, "Scope changes").
type stampSource struct {
	customer string
	info     customerInfo
}

func newEffects() *effects {
	return &effects{stamped: map[DocRef]stampSource{}, moved: map[string]bool{}, grants: map[DocRef][]string{}}
}

// replay records a mutation the store answered from its recorded outcome.
// The push that applied it committed, but a crash or a failure may have
// stopped its settle before the keys it required were written: a customer's
// reassignment not carried to its history, a document stamped from a
// customer that changed meanwhile. A retry carries the same mutation, so
// only one that wrote assigned_reps can have moved a history; the customer's
// own keys were written with it. A restamp writes only documents whose keys
// are wrong, so this repairs and never harms; its cost (a read of the
// history, an outcome row per document checked) is paid on retries only.
func (fx *effects) replay(m *Mutation) {
	if m.Collection == CollCustomers {
		if _, ok := m.Fields["assigned_reps"]; ok && m.Op == OpUpdate {
			fx.moved[m.DocID] = true
		}
		return
	}
	fx.replayed = append(fx.replayed, DocRef{Collection: m.Collection, ID: m.DocID})
}

// note records the consequences of writing next over cur (nil: a create).
// body is next's decoded body; stampedFrom and from are the customer next's
// keys were computed from and its state then ("" when they were not).
func (fx *effects) note(cur, next *Document, body map[string]any, stampedFrom string, from customerInfo) {
	ref := DocRef{Collection: next.Collection, ID: next.ID}
	if stampedFrom != "" {
		fx.stamped[ref] = stampSource{customer: stampedFrom, info: from}
	}
	if next.Collection == CollCustomers && cur != nil && !slices.Equal(userKeys(cur.Scopes), userKeys(next.Scopes)) {
		fx.moved[next.ID] = true
	}
	if next.Collection == CollFollowUps && !next.Deleted {
		if r, _ := body["responsible_role"].(string); r != "" {
			if o, _ := body["order_id"].(string); o != "" {
				fx.grant(DocRef{Collection: CollOrders, ID: o}, RoleScope(r))
			}
			if c, _ := body["customer_id"].(string); c != "" {
				fx.grant(DocRef{Collection: CollCustomers, ID: c}, RoleScope(r))
			}
		}
		// An escalated follow-up's accountable role sees what it concerns.
		if a, _ := body["accountable_role"].(string); a != "" && body["escalated_at"] != nil {
			if o, _ := body["order_id"].(string); o != "" {
				fx.grant(DocRef{Collection: CollOrders, ID: o}, RoleScope(a))
			}
		}
	}
}

func (fx *effects) grant(ref DocRef, key string) {
	if !slices.Contains(fx.grants[ref], key) {
		fx.grants[ref] = append(fx.grants[ref], key)
	}
}

func userKeys(keys []string) []string {
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, "user:") {
			out = append(out, k)
		}
	}
	return out
}

func (c customerInfo) same(o customerInfo) bool {
	return c.exists == o.exists && c.version == o.version && slices.Equal(c.reps, o.reps)
}

// maxRestampRounds bounds how often a restamp chases a customer that keeps
// changing under it; each round is a full, consistent pass.
const maxRestampRounds = 8

// settle makes the keys of what a batch wrote right: documents stamped
// from a customer that changed meanwhile, the histories of customers whose
// reps changed, and the role keys follow-ups grant.
func (e *Engine) settle(ctx context.Context, org string, fx *effects) error {
	var again []DocRef
	if len(fx.stamped) > 0 {
		var ids []string
		for _, s := range fx.stamped {
			ids = append(ids, s.customer)
		}
		now, err := e.resolve(ctx, org, ids)
		if err != nil {
			return err
		}
		for ref, s := range fx.stamped {
			if !now.customer(s.customer).same(s.info) {
				again = append(again, ref)
			}
		}
	}
	again = append(again, fx.replayed...)
	for c := range fx.moved {
		refs, err := e.attached(ctx, org, c)
		if err != nil {
			return err
		}
		again = append(again, refs...)
	}
	if len(again) == 0 && len(fx.grants) == 0 {
		return nil
	}
	grants := fx.grants
	if len(grants) > 0 {
		var err error
		if grants, err = e.withFiles(ctx, org, grants); err != nil {
			return err
		}
	}
	return e.restamp(ctx, org, again, grants)
}

// ScopeLister is a store that lists the documents keyed under a scope
// whatever the state of its sequence: a pull stops at the first number a
// writer has not committed yet (MongoDB), and a restamp that listed a
// customer's history that way would leave every document past that number
// with the old reps' keys.
type ScopeLister interface {
	ScopeRefs(ctx context.Context, org, scope string) ([]DocRef, error)
}

// attached lists the live documents hanging off customer c, from the
// customer's feed.
func (e *Engine) attached(ctx context.Context, org, c string) ([]DocRef, error) {
	refs, err := e.scopeRefs(ctx, org, CustomerScope(c))
	if err != nil {
		return nil, err
	}
	out := refs[:0]
	for _, r := range refs {
		if r.Collection != CollCustomers {
			out = append(out, r)
		}
	}
	return out, nil
}

// scopeRefs lists the live documents keyed under scope: through the store's
// ScopeLister when it has one, else by pulling the scope's feed.
func (e *Engine) scopeRefs(ctx context.Context, org, scope string) ([]DocRef, error) {
	if l, ok := e.store.(ScopeLister); ok {
		return l.ScopeRefs(ctx, org, scope)
	}
	var refs []DocRef
	var after int64
	for {
		pg, err := e.store.Pull(ctx, PullQuery{Org: org, Scopes: []string{scope}, After: after,
			Limit: e.limits.MaxPageSize, MaxBytes: 64 << 20})
		if err != nil {
			return nil, err
		}
		if pg.Compacted { // compacted meanwhile (retention.go): read again
			refs, after = nil, 0
			continue
		}
		for _, ch := range pg.Changes {
			if !ch.Deleted && !ch.Evicted {
				refs = append(refs, DocRef{Collection: ch.Collection, ID: ch.ID})
			}
		}
		if !pg.More || pg.Through <= after {
			return refs, nil
		}
		after = pg.Through
	}
}

// restamp recomputes the scope keys of refs (adding grants) and writes
// those that differ, until the customers they were computed from held still
// for a whole pass.
func (e *Engine) restamp(ctx context.Context, org string, refs []DocRef, grants map[DocRef][]string) error {
	for ref := range grants {
		refs = append(refs, ref)
	}
	system := &access{actor: Actor{Org: org, User: systemUser, Roles: []string{RoleAdmin}}, read: []string{ScopeOrg}}
	for round := 0; len(refs) > 0; round++ {
		if round == maxRestampRounds {
			return Errorf(KindUnavailable, CodeUnavailable, "", "scope keys did not settle after %d passes; retry", round)
		}
		slices.SortFunc(refs, func(a, b DocRef) int { return strings.Compare(a.String(), b.String()) })
		refs = slices.Compact(refs)
		var changed []DocRef
		for start := 0; start < len(refs); start += e.limits.MaxMutations {
			chunk := refs[start:min(start+e.limits.MaxMutations, len(refs))]
			docs, err := e.store.Get(ctx, org, chunk)
			if err != nil {
				return err
			}
			from := map[DocRef]string{}
			var cids []string
			var muts []Mutation
			for _, ref := range chunk {
				d, ok := docs[ref]
				if !ok || d.Deleted {
					continue
				}
				body, err := decodeObject(d.Body)
				if err != nil {
					return err
				}
				if c := customerOf(ref.Collection, body); c != "" {
					from[ref] = c
					cids = append(cids, c)
				}
				muts = append(muts, Mutation{ID: "restamp-" + randomID(), Collection: ref.Collection, DocID: ref.ID, Op: OpUpdate})
			}
			if len(muts) == 0 {
				continue
			}
			used := map[DocRef]customerInfo{} // the customer state each document's keys were computed from
			decide := func(i int, cur *Document, r *resolution) (*Document, Outcome) {
				out := Outcome{MutationID: muts[i].ID, Status: StatusApplied}
				if cur == nil || cur.Deleted {
					return nil, out
				}
				out.Version = cur.Version
				ref := DocRef{Collection: cur.Collection, ID: cur.ID}
				next, from, err := regrant(cur, grants[ref], r) // effects.go
				if err != nil {
					return nil, reject(muts[i].ID, err)
				}
				used[ref] = from
				return next, out
			}
			outs, err := e.push(ctx, system, "server:restamp", muts, &trust{customers: cids, decide: decide})
			if err != nil {
				return err
			}
			for _, o := range outs {
				if o.Status == StatusRejected {
					return Errorf(KindInternal, CodeInternal, "", "restamp rejected: %s", o.Error.Message)
				}
			}
			if len(used) == 0 {
				continue
			}
			now, err := e.resolve(ctx, org, cids)
			if err != nil {
				return err
			}
			for ref, c := range from {
				if was, ok := used[ref]; ok && !now.customer(c).same(was) {
					changed = append(changed, ref)
				}
			}
		}
		refs, grants = changed, nil
	}
	return nil
}

func randomID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Grant makes each document of grants carry the scope keys given with it
// (a role's grant to an order its follow-ups concern), writing only those
// that lack one. A push of follow-ups grants their roles after it commits;
// the workflow calls Grant before it records an order as settled, so a
// crash in between is repaired by the workflow's sweep. Idempotent.
func (e *Engine) Grant(ctx context.Context, org string, grants map[DocRef][]string) error {
	if len(grants) == 0 {
		return nil
	}
	all, err := e.withFiles(ctx, org, grants)
	if err != nil {
		return err
	}
	return e.restamp(ctx, org, nil, all)
}

// withFiles extends grants to the granted documents' files: a document's
// files read what it reads (attachments.go).
func (e *Engine) withFiles(ctx context.Context, org string, grants map[DocRef][]string) (map[DocRef][]string, error) {
	docs := make([]DocRef, 0, len(grants))
	for ref := range grants {
		docs = append(docs, ref)
	}
	files, err := e.filesOf(ctx, org, docs)
	if err != nil {
		return nil, err
	}
	all := make(map[DocRef][]string, len(grants))
	for ref, keys := range grants {
		all[ref] = append(all[ref], keys...)
		for _, f := range files[ref] {
			all[f] = append(all[f], keys...)
		}
	}
	return all, nil
}
