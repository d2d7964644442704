package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Referential rules (WriteRules' Relations): a device's write that names
// other users or documents is checked against them, the same way whichever
// path it takes.

// CodeUnknownRep refuses an assigned_reps entry that is not an active rep of
// the organisation (the admin API answers the same).
const CodeUnknownRep = "unknown_rep"

// docRefs lists, per collection, the fields that name another document and
// the collection they name. The referenced document must exist, be in the
// writer's read set and hang off the same customer.
var docRefs = map[string][]struct{ field, coll string }{
	CollFollowUps:     {{"order_id", CollOrders}},
	CollCustomerNotes: {{"visit_log_id", CollVisitLogs}},
	CollVisitLogs:     {{"visit_plan_id", CollVisitPlans}},
}

// checkReps validates the assigned_reps a device's mutation writes, against
// the directory.
func (e *Engine) checkReps(ctx context.Context, org string, muts []Mutation, pre []*prepared) error {
	known := map[string]string{}
	for i, p := range pre {
		if p.err != nil || p.coll != CollCustomers {
			continue
		}
		v, ptr := p.body["assigned_reps"], "/doc/assigned_reps"
		if muts[i].Op == OpUpdate {
			v, ptr = p.fields["assigned_reps"], "/fields/assigned_reps"
		}
		raw, _ := v.([]any)
		reps := make([]string, len(raw))
		for j, r := range raw {
			reps[j], _ = r.(string) // the schema checked the items are strings
		}
		err := e.CheckReps(ctx, org, reps, ptr, known)
		switch {
		case ErrorKind(err) == KindInvalid:
			p.err = err
		case err != nil:
			return err
		}
	}
	return nil
}

// CheckReps validates a customer's assigned_reps, at pointer ptr: each an
// active user of the organisation holding the role rep, each once. It is
// the one check of the rule, for a device's push and for the admin API
// alike; a refusal is KindInvalid with CodeUnknownRep at the entry's
// pointer, any other error is the directory's. known caches the
// directory's verdicts across calls (user -> why not, "" when fine; nil:
// no cache). Without a directory (tokens minted by the operator's tools
// only) there is no one to check against.
func (e *Engine) CheckReps(ctx context.Context, org string, reps []string, ptr string, known map[string]string) error {
	if e.dir == nil {
		return nil
	}
	if known == nil {
		known = map[string]string{}
	}
	for j, id := range reps {
		at := fmt.Sprintf("%s/%d", ptr, j)
		if slices.Contains(reps[:j], id) {
			return Errorf(KindInvalid, CodeUnknownRep, at, "%q is listed twice", id)
		}
		why, seen := known[id]
		if !seen {
			m, ok, err := e.dir.Member(ctx, org, id)
			switch {
			case err != nil:
				return err
			case !ok:
				why = fmt.Sprintf("no user %q in this organisation", id)
			case m.Disabled:
				why = fmt.Sprintf("user %q is disabled", id)
			case !slices.Contains(m.Roles, RoleRep):
				why = fmt.Sprintf("user %q does not hold the role rep", id)
			}
			known[id] = why
		}
		if why != "" {
			return Errorf(KindInvalid, CodeUnknownRep, at, "%s", why)
		}
	}
	return nil
}

// Assign sets customer's assigned_reps, as actor (an admin, through the
// admin API or the console), recorded under source in the field history.
// It is the one rule of an assignment: a customer that is not there (or of
// another organisation, or deleted) is not found; reps pass CheckReps at
// pointer ptr; the customer's history moves with it (Upsert), and an
// assignment repeated changes nothing but re-checks that history. It returns
// the customer's version and whether this call changed it.
func (e *Engine) Assign(ctx context.Context, actor Actor, source, customer string, reps []string, ptr string) (int64, bool, error) {
	ref := DocRef{Collection: CollCustomers, ID: customer}
	notFound := Errorf(KindNotFound, CodeNotFound, "", "no customer %q", customer)
	cur, err := e.store.Get(ctx, actor.Org, []DocRef{ref})
	if err != nil {
		return 0, false, err
	}
	before := cur[ref]
	if before == nil || before.Deleted {
		return 0, false, notFound
	}
	if err := e.CheckReps(ctx, actor.Org, reps, ptr, nil); err != nil {
		return 0, false, err
	}
	if reps == nil {
		reps = []string{}
	}
	raw, err := json.Marshal(reps)
	if err != nil {
		return 0, false, err
	}
	outs, err := e.Upsert(ctx, actor, source, []UpsertDoc{{Collection: CollCustomers, ID: customer,
		Fields: map[string]json.RawMessage{"assigned_reps": raw}}})
	if err != nil {
		return 0, false, err
	}
	o := outs[0]
	if o.Status == StatusRejected {
		if o.Error.Code == CodeDocumentDeleted { // since it was read
			return 0, false, notFound
		}
		return 0, false, Errorf(KindInvalid, o.Error.Code, strings.Replace(o.Error.Pointer, "/fields/assigned_reps", ptr, 1), "%s", o.Error.Message)
	}
	return o.Version, o.Version != before.Version, nil
}

// referenced lists the documents the creates of a batch name, and the
// creates of the batch by document.
func referenced(muts []Mutation, pre []*prepared) (out []DocRef, creates map[DocRef]map[string]any) {
	for i, p := range pre {
		if p.err != nil || p.body == nil {
			continue
		}
		if creates == nil {
			creates = map[DocRef]map[string]any{}
		}
		creates[DocRef{Collection: p.coll, ID: muts[i].DocID}] = p.body
		for _, r := range docRefs[p.coll] {
			if id, _ := p.body[r.field].(string); id != "" {
				out = append(out, DocRef{Collection: r.coll, ID: id})
			}
		}
	}
	return out, creates
}

// checkRefs checks the references of a device's create: each named document
// exists (stored before the push, or created earlier in it), is in the
// writer's read set and hangs off the same customer. A missing document and
// one the writer does not see answer alike.
func checkRefs(acc *access, coll string, body map[string]any, res *resolution) error {
	for _, r := range docRefs[coll] {
		id, _ := body[r.field].(string)
		if id == "" {
			continue
		}
		ref := DocRef{Collection: r.coll, ID: id}
		var refBody map[string]any
		if d := res.refs[ref]; d != nil && !d.Deleted && acc.sees(d) {
			refBody = mustDecode(d.Body)
		} else if d == nil {
			// Created later in the same push (a visit log before its plan):
			// that create is checked on its own, customer included.
			refBody = res.batch[ref]
		}
		ok := refBody != nil
		if c := customerOf(coll, body); ok && c != "" {
			ok = customerOf(r.coll, refBody) == c
		}
		if !ok {
			return Errorf(KindForbidden, CodeInvalidReference, "/doc/"+r.field,
				"%s %s is not one of yours on this customer (or does not exist)", r.coll, id)
		}
	}
	return nil
}
