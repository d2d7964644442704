package fieldsales

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/sync/engine"
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

// checkReps validates the assigned_reps the batch's customer mutations
// write, against the directory; a refusal rejects its mutation.
func (b *batch) checkReps(ctx context.Context, rd engine.Reader) error {
	known := map[string]string{}
	for _, p := range b.info.Writes {
		if p.Mutation.Collection != CollCustomers {
			continue
		}
		v, ptr := p.Body[FieldAssignedReps], "/doc/assigned_reps"
		if p.Mutation.Op == engine.OpUpdate {
			var ok bool
			if v, ok = p.Fields[FieldAssignedReps]; !ok {
				continue
			}
			ptr = "/fields/assigned_reps"
		}
		raw, _ := v.([]any)
		reps := make([]string, len(raw))
		for j, r := range raw {
			reps[j], _ = r.(string) // the schema checked the items are strings
		}
		err := checkReps(ctx, rd.Member, reps, ptr, known)
		switch {
		case engine.ErrorKind(err) == engine.KindInvalid:
			b.refused[p.Mutation.ID] = err
		case err != nil:
			return err
		}
	}
	return nil
}

// member is the directory's word on a user of one organisation.
type member func(ctx context.Context, user string) (engine.Member, bool, error)

// Customers are the rules of customer assignment over an engine, for the
// admin API and the console: the same rules a device's push meets.
type Customers struct {
	*engine.Engine
	Directory engine.Directory // nil: tokens minted by the operator's tools only
}

func (c Customers) member(org string) member {
	if c.Directory == nil {
		return nil
	}
	return func(ctx context.Context, user string) (engine.Member, bool, error) {
		return c.Directory.Member(ctx, org, user)
	}
}

// CheckReps validates a customer's assigned_reps, at pointer ptr: each an
// active user of the organisation holding the role rep, each once. It is
// the one check of the rule, for a device's push and for the admin API
// alike; a refusal is KindInvalid with CodeUnknownRep at the entry's
// pointer, any other error is the directory's. known caches the
// directory's verdicts across calls (user -> why not, "" when fine; nil: no
// cache). Without a directory there is no one to check against.
func (c Customers) CheckReps(ctx context.Context, org string, reps []string, ptr string, known map[string]string) error {
	return checkReps(ctx, c.member(org), reps, ptr, known)
}

func checkReps(ctx context.Context, member member, reps []string, ptr string, known map[string]string) error {
	if member == nil {
		return nil
	}
	if known == nil {
		known = map[string]string{}
	}
	for j, id := range reps {
		at := fmt.Sprintf("%s/%d", ptr, j)
		if slices.Contains(reps[:j], id) {
			return engine.Errorf(engine.KindInvalid, CodeUnknownRep, at, "%q is listed twice", id)
		}
		why, seen := known[id]
		if !seen {
			m, ok, err := member(ctx, id)
			switch {
			case errors.Is(err, engine.ErrNoDirectory):
				return nil
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
			return engine.Errorf(engine.KindInvalid, CodeUnknownRep, at, "%s", why)
		}
	}
	return nil
}

// Assign sets customer's assigned_reps, as actor (an admin, through the
// admin API or the console), recorded under source in the field history.
// It is the one rule of an assignment: a customer that is not there (or of
// another organisation, or deleted) is not found; reps pass CheckReps at
// pointer ptr; the customer's history moves with it (Upsert), and an
// assignment repeated changes nothing but re-checks that history. It
// returns the customer's version and whether this call changed it.
func (c Customers) Assign(ctx context.Context, actor engine.Actor, source, customer string, reps []string, ptr string) (int64, bool, error) {
	eng := c.Engine
	ref := engine.DocRef{Collection: CollCustomers, ID: customer}
	notFound := engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no customer %q", customer)
	cur, err := eng.Visible(ctx, actor, []engine.DocRef{ref})
	if err != nil {
		return 0, false, err
	}
	before := cur[ref]
	if before == nil || before.Deleted {
		return 0, false, notFound
	}
	if err := c.CheckReps(ctx, actor.Org, reps, ptr, nil); err != nil {
		return 0, false, err
	}
	if reps == nil {
		reps = []string{}
	}
	raw, err := json.Marshal(reps)
	if err != nil {
		return 0, false, err
	}
	outs, err := eng.Upsert(ctx, actor, source, []engine.UpsertDoc{{Collection: CollCustomers, ID: customer,
		Fields: map[string]json.RawMessage{FieldAssignedReps: raw}}})
	if err != nil {
		return 0, false, err
	}
	o := outs[0]
	if o.Status == engine.StatusRejected {
		if o.Error.Code == engine.CodeDocumentDeleted { // since it was read
			return 0, false, notFound
		}
		return 0, false, engine.Errorf(engine.KindInvalid, o.Error.Code, strings.Replace(o.Error.Pointer, "/fields/assigned_reps", ptr, 1), "%s", o.Error.Message)
	}
	return o.Version, o.Version != before.Version, nil
}

// referenced lists the documents the batch's creates name.
func referenced(writes []engine.Pending) []engine.DocRef {
	var out []engine.DocRef
	for _, p := range writes {
		if p.Body == nil {
			continue
		}
		for _, r := range docRefs[p.Mutation.Collection] {
			if id, _ := p.Body[r.field].(string); id != "" {
				out = append(out, engine.DocRef{Collection: r.coll, ID: id})
			}
		}
	}
	return out
}

// checkRefs checks the references of a device's create: each named document
// exists (stored before the push, or created earlier in it), is in the
// writer's read set and hangs off the same customer. A missing document and
// one the writer does not see answer alike.
func (b *batch) checkRefs(w *engine.Write) error {
	coll, body := w.Mutation.Collection, w.Body
	for _, r := range docRefs[coll] {
		id, _ := body[r.field].(string)
		if id == "" {
			continue
		}
		ref := engine.DocRef{Collection: r.coll, ID: id}
		var refBody map[string]any
		if d := b.created[ref]; d != nil {
			if w.Sees(d.keys) {
				refBody = d.body
			}
		} else if d := b.refs[ref]; d != nil {
			if !d.Deleted && w.Sees(d.Scopes) {
				refBody = mustDecode(d.Body)
			}
		} else {
			// Created later in the same push (a visit log before its plan):
			// that create is checked on its own, customer included.
			refBody = b.creates[ref]
		}
		ok := refBody != nil
		if c := customerOf(coll, body); ok && c != "" {
			ok = customerOf(r.coll, refBody) == c
		}
		if !ok {
			return engine.Errorf(engine.KindForbidden, CodeInvalidReference, "/doc/"+r.field,
				"%s %s is not one of yours on this customer (or does not exist)", r.coll, id)
		}
	}
	return nil
}
