package workflow

import (
	"context"
	"slices"
	"strconv"

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
	Role   string
	Status string // "" for every status
	After  string // the previous page's Next
	Limit  int    // 0: DefaultListLimit
}

// Page is one page of a queue. Next is empty at the end of the queue.
type Page struct {
	FollowUps []FollowUp `json:"follow_ups"`
	Next      string     `json:"next,omitempty"`
}

// List returns follow-ups whose responsible role is q.Role, for callers
// holding that role (admins any role), in the order of their last change.
// It reads the role's scope feed: a follow-up changed while a caller pages
// moves to the feed's end, so it may show up again on a later page, never
// go missing.
func (s *Service) List(ctx context.Context, caller engine.Actor, q ListQuery) (Page, error) {
	actor, _, err := s.resolve(ctx, caller)
	if err != nil {
		return Page{}, err
	}
	if q.Role == "" {
		return Page{}, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/role", "role is required")
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
	if !actor.HasRole(q.Role) && !actor.HasRole(engine.RoleAdmin) {
		return Page{}, engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "/role", "you do not hold the %s role", q.Role)
	}
	page := Page{FollowUps: []FollowUp{}}
	for scanned := 0; scanned < listScanBudget; {
		changes, more, err := s.cfg.Docs.Pull(ctx, engine.PullQuery{Org: actor.Org, Scopes: []string{engine.RoleScope(q.Role)},
			After: after, Limit: listPullPage, MaxBytes: 4 << 20})
		if err != nil {
			return Page{}, err
		}
		for _, c := range changes {
			scanned++
			after = c.Seq
			if c.Collection != engine.CollFollowUps || c.Deleted || c.Evicted {
				continue
			}
			d := &engine.Document{Body: c.Body}
			body := decode(d)
			if str(body, "responsible_role") != q.Role || (q.Status != "" && str(body, "status") != q.Status) {
				continue
			}
			page.FollowUps = append(page.FollowUps, FollowUp{ID: c.ID, Version: c.Version, Doc: c.Body})
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
