package console

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/sync/engine"

	"github.com/fieldsync/fieldsync/workflow"
)

// Queue views: which follow-ups of a role's queue a page lists.
var queueViews = []struct{ ID, Label string }{
	{"actionable", "Actionable"}, {"mine", "Claimed by me"}, {"waiting", "Waiting"}, {"blocked", "Blocked"}, {"done", "Done"},
}

// queuePageSize is how many follow-ups one page reads from the workflow.
const queuePageSize = 50

// queueQuery is a queue page's URL: role, view, filters and cursor.
type queueQuery struct {
	Role, View, Status, Customer, Rep, Due, After string
}

func queryOf(c *fiber.Ctx) queueQuery {
	return queueQuery{Role: strings.Clone(c.Query("role")), View: strings.Clone(c.Query("view", "actionable")),
		Status: strings.Clone(c.Query("status")), Customer: strings.Clone(c.Query("customer")),
		Rep: strings.Clone(c.Query("rep")), Due: strings.Clone(c.Query("due")), After: strings.Clone(c.Query("after"))}
}

func (q queueQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"role": q.Role, "view": q.View, "status": q.Status, "customer": q.Customer, "rep": q.Rep,
		"due": q.Due, "after": q.After} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// queueRow is one follow-up as a queue shows it.
type queueRow struct {
	ID, Title, Status, Customer, Rep, Order, AssignedTo, Due, BlockedReason string
	Overdue, Escalated, Mine, Actionable                                    bool
	WaitingOn                                                               []string
}

type queueView struct {
	Q        queueQuery
	RoleName string
	Views    []tab
	Statuses []option
	Rows     []queueRow
	Next     string // URL of the next page; "" at the end
	LiveURL  string
	PollMS   int64
	Shown    string // when the list was read, in the org's zone
}

type tab struct {
	Label, Href string
	Current     bool
}

func (cs *Console) queuePage(c *fiber.Ctx) error {
	v, err := cs.queue(c)
	if err != nil {
		return err
	}
	return cs.render(c, "queue", view{Title: v.RoleName + " queue", User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// queueFragment is the list alone, which an open queue page fetches every
// PollInterval to show new and changed follow-ups without a reload.
func (cs *Console) queueFragment(c *fiber.Ctx) error {
	v, err := cs.queue(c)
	if err != nil {
		return err
	}
	return cs.render(c, "_queue", view{Data: v})
}

func (cs *Console) queue(c *fiber.Ctx) (*queueView, error) {
	q := queryOf(c)
	u := userOf(c)
	if q.Role == "" || !slices.Contains(cs.queueRolesOf(c), q.Role) {
		return nil, errNotFound
	}
	lq := workflow.ListQuery{Role: q.Role, After: q.After, Limit: queuePageSize}
	yes, no := true, false
	switch q.View {
	case "actionable":
		lq.Actionable = &yes
	case "mine":
		lq.Actionable = &yes
	case "waiting":
		lq.Actionable, lq.Status = &no, workflow.FUOpen
	case "blocked":
		lq.Status = workflow.FUBlocked
	case "done":
		lq.Status = workflow.FUDone
	default:
		return nil, errNotFound
	}
	if q.Status != "" {
		// Narrows the view; the workflow refuses an unknown status.
		lq.Status = q.Status
	}
	oi, err := cs.org(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	now := cs.cfg.Now()
	lq.Match = cs.matcher(c, q, oi, now)
	page, err := cs.cfg.Workflow.List(ctx, actorOf(c), lq)
	if err != nil {
		return nil, err
	}
	var custIDs []string
	docs := make([]queueFields, len(page.FollowUps))
	for i, it := range page.FollowUps {
		json.Unmarshal(it.Doc, &docs[i])
		if docs[i].CustomerID != "" {
			custIDs = append(custIDs, docs[i].CustomerID)
		}
	}
	slices.Sort(custIDs)
	customers, err := cs.customerNames(ctx, actorOf(c), slices.Compact(custIDs))
	if err != nil {
		return nil, err
	}
	v := &queueView{Q: q, RoleName: roleLabel(q.Role), PollMS: cs.cfg.PollInterval.Milliseconds(),
		Shown: now.In(oi.loc).Format("15:04:05")}
	for i, it := range page.FollowUps {
		d := docs[i]
		r := queueRow{ID: it.ID, Title: firstNonEmpty(d.Title, d.Description, d.Activity), Status: d.Status,
			Customer: firstNonEmpty(customers[d.CustomerID], d.CustomerID), Rep: oi.name(d.RepID), Order: d.OrderID,
			AssignedTo: oi.name(d.AssignedTo), Due: oi.when(d.DueAt), BlockedReason: d.BlockedReason,
			Escalated: d.EscalatedAt != "", Mine: d.AssignedTo == u.ID, Actionable: it.Actionable}
		if d.RepID == "" {
			r.Rep = ""
		}
		if d.AssignedTo == "" {
			r.AssignedTo = ""
		}
		due, derr := time.Parse(time.RFC3339Nano, d.DueAt)
		open := d.Status != workflow.FUDone && d.Status != workflow.FUCancelled
		r.Overdue = derr == nil && open && now.After(due)
		for _, w := range it.WaitingOn {
			r.WaitingOn = append(r.WaitingOn, oi.step(w, d.OrderID))
		}
		v.Rows = append(v.Rows, r)
	}
	// Overdue first, then by due time: what needs doing first is on top.
	slices.SortStableFunc(v.Rows, func(a, b queueRow) int {
		if a.Overdue != b.Overdue {
			if a.Overdue {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Due, b.Due)
	})
	v.Statuses = []option{{Value: "", Label: "any", Selected: q.Status == ""}}
	for _, st := range []string{workflow.FUOpen, workflow.FUClaimed, workflow.FUInProgress, workflow.FUBlocked, workflow.FUDone, workflow.FUCancelled} {
		v.Statuses = append(v.Statuses, option{Value: st, Label: strings.ReplaceAll(st, "_", " "), Selected: q.Status == st})
	}
	for _, t := range queueViews {
		tq := queueQuery{Role: q.Role, View: t.ID, Status: q.Status, Customer: q.Customer, Rep: q.Rep, Due: q.Due}
		v.Views = append(v.Views, tab{Label: t.Label, Href: "/console/queue?" + tq.values().Encode(), Current: t.ID == q.View})
	}
	if page.Next != "" {
		nq := q
		nq.After = page.Next
		v.Next = "/console/queue?" + nq.values().Encode()
	}
	v.LiveURL = "/console/queue/live?" + q.values().Encode()
	return v, nil
}

// keep applies the filters the workflow's listing does not: who claimed it,
// customer, rep and due time. They filter the page read, so a filtered page
// may be shorter than queuePageSize; the next page goes on.
// queueFields is what a queue row shows of a follow-up.
type queueFields struct {
	Title, Activity, Status, Description string
	CustomerID                           string `json:"customer_id"`
	OrderID                              string `json:"order_id"`
	RepID                                string `json:"rep_id"`
	AssignedTo                           string `json:"assigned_to"`
	DueAt                                string `json:"due_at"`
	EscalatedAt                          string `json:"escalated_at"`
	BlockedReason                        string `json:"blocked_reason"`
}

// matcher is the view's and the filters' predicate, which the workflow's
// listing applies chunk by chunk, so a filtered queue pages through the
// whole queue; nil when nothing narrows it.
func (cs *Console) matcher(c *fiber.Ctx, q queueQuery, oi *orgInfo, now time.Time) func(context.Context, []json.RawMessage) ([]bool, error) {
	if q.View != "mine" && q.View != "actionable" && q.Customer == "" && q.Rep == "" && q.Due == "" {
		return nil
	}
	u, actor := userOf(c), actorOf(c)
	return func(ctx context.Context, raws []json.RawMessage) ([]bool, error) {
		docs := make([]queueFields, len(raws))
		var custIDs []string
		for i, raw := range raws {
			json.Unmarshal(raw, &docs[i])
			custIDs = append(custIDs, docs[i].CustomerID)
		}
		var names map[string]string
		if q.Customer != "" {
			slices.Sort(custIDs)
			var err error
			if names, err = cs.customerNames(ctx, actor, slices.Compact(custIDs)); err != nil {
				return nil, err
			}
		}
		keep := make([]bool, len(docs))
		for i, d := range docs {
			due, derr := time.Parse(time.RFC3339Nano, d.DueAt)
			open := d.Status != workflow.FUDone && d.Status != workflow.FUCancelled
			r := queueRow{Customer: firstNonEmpty(names[d.CustomerID], d.CustomerID), Rep: oi.name(d.RepID),
				Mine: d.AssignedTo == u.ID, Overdue: derr == nil && open && now.After(due)}
			keep[i] = q.keep(r, d.Status, due, derr == nil, now, oi.loc)
		}
		return keep, nil
	}
}

func (q queueQuery) keep(r queueRow, status string, due time.Time, hasDue bool, now time.Time, loc *time.Location) bool {
	if q.View == "mine" && (!r.Mine || (status != workflow.FUClaimed && status != workflow.FUInProgress)) {
		return false
	}
	if q.View == "actionable" && status == workflow.FUBlocked {
		return false
	}
	if q.Customer != "" && !containsFold(r.Customer, q.Customer) {
		return false
	}
	if q.Rep != "" && !containsFold(r.Rep, q.Rep) {
		return false
	}
	switch q.Due {
	case "overdue":
		return r.Overdue
	case "today":
		y, m, d := now.In(loc).Date()
		y2, m2, d2 := due.In(loc).Date()
		return hasDue && y == y2 && m == m2 && d == d2
	}
	return true
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// step names a dependency by its activity and the role that works it.
func (oi *orgInfo) step(id, orderID string) string {
	act := strings.TrimPrefix(id, "fu-"+orderID+"-")
	if role := oi.activityRole[act]; role != "" {
		return act + " (" + roleLabel(role) + ")"
	}
	return act
}

// customerNames returns the names of the customers among ids the caller sees.
func (cs *Console) customerNames(ctx context.Context, caller engine.Actor, ids []string) (map[string]string, error) {
	docs, err := cs.cfg.Workflow.Customers(ctx, caller, ids)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(docs))
	for id, b := range docs {
		var c struct{ Name string }
		json.Unmarshal(b, &c)
		names[id] = c.Name
	}
	return names, nil
}
