package workflow

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Limits of a queue listing (docs/workflows.md).
const (
	DefaultListLimit = 50
	MaxListLimit     = 200
	// listScanBudget bounds the feed entries one listing reads: a role's
	// feed also holds the orders and customers its follow-ups concern and
	// follow-ups of other statuses, so a filtered page may need to skip
	// many. Past the budget the page ends early with a cursor to go on.
	listScanBudget = 5000
	listPullPage   = 500
)

// ListQuery asks for one page of a role's queue.
type ListQuery struct {
	Role   string // "": every queue role the caller holds
	Status string // "" for every status
	// Actionable keeps only follow-ups that can be worked now (true) or
	// only those waiting on a dependency or closed (false); nil keeps both.
	Actionable *bool
	After      string // the previous page's Next
	Limit      int    // 0: DefaultListLimit
	// Match, when set, keeps only the follow-ups it answers true for (a
	// caller's own filters: a customer's name, a rep, a due day). It is
	// asked a chunk of the queue at a time, before paging, so a filtered
	// queue pages through every follow-up of the role, not one page of it.
	Match func(ctx context.Context, docs []json.RawMessage) ([]bool, error)
}

// Page is one page of a queue. Next is empty at the end of the queue.
type Page struct {
	FollowUps []QueueItem `json:"follow_ups"`
	Next      string      `json:"next,omitempty"`
}

// QueueItem is a follow-up in a queue and whether it can be worked now: it
// is not done or cancelled, and every follow-up it depends on is done.
// WaitingOn lists the dependencies that are not.
type QueueItem struct {
	FollowUp
	Actionable bool     `json:"actionable"`
	WaitingOn  []string `json:"waiting_on,omitempty"`
}

// List returns follow-ups whose responsible role is q.Role, for callers
// holding that role (admins any role), in the order of their last change.
// Without q.Role it lists the queues of every role the caller holds
// (admin excepted: an admin names the queue).
// It reads the role's scope feed: a follow-up changed while a caller pages
// moves to the feed's end, so it may show up again on a later page, never
// go missing.
func (s *Service) List(ctx context.Context, caller engine.Actor, q ListQuery) (Page, error) {
	actor, _, err := s.resolve(ctx, caller)
	if err != nil {
		return Page{}, err
	}
	roles := []string{q.Role}
	if q.Role == "" {
		roles = slices.DeleteFunc(slices.Clone(actor.Roles), func(r string) bool { return r == fieldsales.RoleAdmin })
		if len(roles) == 0 {
			return Page{}, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/role", "role is required: you hold no role with a queue")
		}
	}
	if q.Status != "" && !slices.Contains(fuStatuses, q.Status) {
		return Page{}, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/status", "status must be one of %v", fuStatuses)
	}
	if q.Limit == 0 {
		q.Limit = DefaultListLimit
	}
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return Page{}, engine.Errorf(engine.KindInvalid, engine.CodeLimitOutOfRange, "/limit", "limit must be 1 to %d", MaxListLimit)
	}
	var after int64
	if q.After != "" {
		if after, err = strconv.ParseInt(q.After, 10, 64); err != nil || after < 0 {
			return Page{}, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/after", "after must be the next value of a previous page")
		}
	}
	if q.Role != "" && !actor.HasRole(q.Role) && !actor.HasRole(fieldsales.RoleAdmin) {
		return Page{}, engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "/role", "you do not hold the %s role", q.Role)
	}
	// Follow-ups that are neither actionable nor closed wait for others:
	// their index (fieldsales.WaitingIndexKey) holds them, not the thousands
	// of actionable ones a busy queue holds. Each is still checked below.
	waiting := q.Actionable != nil && !*q.Actionable && q.Status != "" && q.Status != FUDone && q.Status != FUCancelled
	scopes := make([]string, len(roles))
	for i, r := range roles {
		scopes[i] = fieldsales.RoleScope(r)
		if waiting {
			scopes[i] = fieldsales.WaitingIndexKey(r)
		}
	}
	page := Page{FollowUps: []QueueItem{}}
	for scanned := 0; scanned < listScanBudget; {
		pg, err := s.cfg.Docs.Pull(ctx, engine.PullQuery{Org: actor.Org, Scopes: scopes,
			After: after, Limit: listPullPage, MaxBytes: 4 << 20})
		if err != nil {
			return Page{}, err
		}
		if pg.Compacted {
			// A cursor below the history the store keeps: the queue
			// starts over (docs/operations.md, "Retention").
			after = 0
			continue
		}
		changes, more := pg.Changes, pg.More
		// The matching follow-ups of this chunk, with their dependencies
		// read in one call.
		var items []QueueItem
		var seqs []int64
		var deps [][]string
		for _, c := range changes {
			if c.Collection != fieldsales.CollFollowUps || c.Deleted || c.Evicted {
				continue
			}
			body := decode(&engine.Document{Body: c.Body})
			if !slices.Contains(roles, str(body, fieldsales.FieldResponsibleRole)) || (q.Status != "" && str(body, "status") != q.Status) {
				continue
			}
			closed := str(body, "status") == FUDone || str(body, "status") == FUCancelled
			items = append(items, QueueItem{FollowUp: FollowUp{ID: c.ID, Version: c.Version, Doc: c.Body}, Actionable: !closed})
			seqs = append(seqs, c.Seq)
			deps = append(deps, stringList(body["depends_on"]))
		}
		if q.Match != nil && len(items) > 0 {
			docs := make([]json.RawMessage, len(items))
			for i, it := range items {
				docs[i] = it.Doc
			}
			keep, err := q.Match(ctx, docs)
			if err != nil {
				return Page{}, err
			}
			n := 0
			for i := range items {
				if keep[i] {
					items[n], seqs[n], deps[n] = items[i], seqs[i], deps[i]
					n++
				}
			}
			items, seqs, deps = items[:n], seqs[:n], deps[:n]
		}
		waiting, err := s.openDependencies(ctx, actor.Org, deps)
		if err != nil {
			return Page{}, err
		}
		for i := range items {
			items[i].WaitingOn = waiting[i]
			items[i].Actionable = items[i].Actionable && len(waiting[i]) == 0
		}
		next := 0 // items added to the page
		for _, c := range changes {
			scanned++
			after = c.Seq
			if next == len(items) || seqs[next] != c.Seq {
				continue
			}
			it := items[next]
			next++
			if q.Actionable != nil && it.Actionable != *q.Actionable {
				continue
			}
			page.FollowUps = append(page.FollowUps, it)
			if len(page.FollowUps) == q.Limit {
				page.Next = strconv.FormatInt(after, 10)
				return page, nil
			}
		}
		if !more || len(changes) == 0 {
			return page, nil
		}
	}
	page.Next = strconv.FormatInt(after, 10)
	return page, nil
}

// openDependencies returns, for each list of follow-up ids, those that are
// not done (missing or deleted ones included), reading them all at once.
func (s *Service) openDependencies(ctx context.Context, org string, deps [][]string) ([][]string, error) {
	var refs []engine.DocRef
	for _, ids := range deps {
		for _, id := range ids {
			refs = append(refs, engine.DocRef{Collection: fieldsales.CollFollowUps, ID: id})
		}
	}
	open := make([][]string, len(deps))
	if len(refs) == 0 {
		return open, nil
	}
	got, err := s.cfg.Docs.Get(ctx, org, refs)
	if err != nil {
		return nil, err
	}
	for i, ids := range deps {
		for _, id := range ids {
			d := got[engine.DocRef{Collection: fieldsales.CollFollowUps, ID: id}]
			if d == nil || d.Deleted || str(decode(d), "status") != FUDone {
				open[i] = append(open[i], id)
			}
		}
	}
	return open, nil
}

// stringList returns the strings of a decoded JSON array.
func stringList(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
