package push

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// The contracts of the triggers (/work/coord.md, docs/push.md):
//   - follow_ups: status done or blocked -> the users of the roles in
//     notify_on_done / notify_on_blocked ("rep" means the follow-up's rep_id).
//   - visit_logs: review set -> the visit's owner.
//   - visit_plans: assigned_by set and not the plan's rep (rep_id, else the
//     owner) -> that rep.
//   - orders: a status other than draft or submitted (those are the rep's),
//     written by someone else than the owner -> the owner.
// Whoever made the transition (closed_by, review.by, assigned_by, else the
// document's last writer) is never notified of it.

// event is one trigger that fired for one change: who to tell is resolved
// afterwards (roles need the directory).
type event struct {
	trigger  string
	category string
	urgent   bool
	state    string   // what makes this transition distinct (see NotificationID)
	users    []string // recipients by id
	roles    []string // recipients by role ("rep" resolved through rep)
	rep      string
	actor    string // who made the transition: never told of it
	// at is when the transition happened, when the document says; an event
	// older than the tailer's MaxAge is history, not news (an edit of an
	// old document must not announce its old transition again).
	at time.Time
	// until is when the event stops mattering (a planned visit's start).
	until time.Time
	vars  map[string]string
}

// The shapes the triggers read.
type (
	followUp  = fieldsales.FollowUp
	visitLog  = fieldsales.VisitLog
	visitPlan = fieldsales.VisitPlan
	order     = fieldsales.Order
)

// watched are the collections with triggers.
var watched = []string{"follow_ups", "visit_logs", "visit_plans", "orders"}

// evaluate returns the events a change fires. doc is the stored document
// (owner, last writer); nil when it could not be read.
func evaluate(c engine.Change, doc *engine.Document) []event {
	if c.Deleted || c.Evicted || doc == nil || doc.Deleted {
		return nil
	}
	switch c.Collection {
	case "follow_ups":
		var f followUp
		if json.Unmarshal(c.Body, &f) != nil {
			return nil
		}
		vars := map[string]string{"activity": f.Activity, "order_id": f.OrderID, "reason": f.BlockedReason}
		switch f.Status {
		case "done":
			actor := f.ClosedBy
			if actor == "" {
				actor = doc.UpdatedBy
			}
			return []event{{trigger: TriggerFollowUpDone, category: CategoryFollowUp, urgent: true,
				state: "done|" + f.ClosedAt, roles: f.NotifyOnDone, rep: f.RepID, actor: actor, at: stamp(f.ClosedAt), vars: vars}}
		case "blocked":
			return []event{{trigger: TriggerFollowUpBlocked, category: CategoryFollowUp, urgent: true,
				state: "blocked|" + f.BlockedAt + "|" + f.BlockedReason, roles: f.NotifyOnBlocked, rep: f.RepID,
				actor: doc.UpdatedBy, at: stamp(f.BlockedAt), vars: vars}}
		}
	case "visit_logs":
		var v visitLog
		if json.Unmarshal(c.Body, &v) != nil || v.Review == nil || v.Review.Status == "" || v.Review.By == doc.Owner {
			return nil
		}
		return []event{{trigger: TriggerVisitReviewed, category: CategoryVisitReview,
			state: v.Review.Status + "|" + v.Review.At, users: []string{doc.Owner}, actor: v.Review.By, at: stamp(v.Review.At),
			vars: map[string]string{"status": v.Review.Status}}}
	case "visit_plans":
		var p visitPlan
		// Only a plan still to be visited: a plan marked done or missed later
		// is the same assignment, not news.
		if json.Unmarshal(c.Body, &p) != nil {
			return nil
		}
		if p.RepID == "" {
			p.RepID = doc.Owner
		}
		if p.AssignedBy == "" || p.AssignedBy == p.RepID || p.Status != "planned" {
			return nil
		}
		start := ""
		begins := stamp(p.PlannedStart)
		if !begins.IsZero() {
			start = " on " + begins.Format("Mon 2 Jan 15:04")
		}
		return []event{{trigger: TriggerVisitAssigned, category: CategoryVisitPlan,
			state: p.AssignedBy + "|" + p.RepID, users: []string{p.RepID}, actor: p.AssignedBy, until: begins,
			vars: map[string]string{"start": start}}}
	case "orders":
		var o order
		// draft and submitted are the rep's own; any other status is the
		// back office's (or the server's), except a cancel by the rep.
		if json.Unmarshal(c.Body, &o) != nil || o.Status == "" || o.Status == "draft" || o.Status == "submitted" ||
			o.Status == "cancelled" && doc.UpdatedBy == doc.Owner {
			return nil
		}
		name := o.ERPNumber
		if name == "" {
			name = c.ID
		}
		return []event{{trigger: TriggerOrderStatus, category: CategoryOrderStatus,
			state: o.Status + "|" + o.StatusChangedAt, users: []string{doc.Owner}, at: stamp(o.StatusChangedAt),
			vars: map[string]string{"order": name, "status": o.Status}}}
	}
	return nil
}

// stamp reads an RFC 3339 time of a document; zero when absent or not one.
func stamp(v string) time.Time {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}
	}
	return t
}

// resolver turns events into recipients, caching role lookups for one pass.
type resolver struct {
	dir   Directory
	org   string
	roles map[string][]string
}

func (r *resolver) recipients(ctx context.Context, e event) ([]string, error) {
	users := slices.Clone(e.users)
	for _, role := range e.roles {
		if role == identity.RoleRep {
			if e.rep != "" {
				users = append(users, e.rep)
			}
			continue
		}
		ids, ok := r.roles[role]
		if !ok {
			after := ""
			for {
				page, err := r.dir.Users(ctx, r.org, identity.UserFilter{Role: role, After: after, Limit: 1000})
				if err != nil {
					return nil, err
				}
				for _, u := range page {
					if !u.Disabled {
						ids = append(ids, u.ID)
					}
				}
				if len(page) < 1000 {
					break
				}
				after = page[len(page)-1].ID
			}
			r.roles[role] = ids
		}
		users = append(users, ids...)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	return slices.DeleteFunc(users, func(u string) bool { return u == "" || u == e.actor }), nil
}
