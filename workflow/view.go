package workflow

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Detail is a follow-up as a back-office page shows it: the follow-up, the
// order and customer it concerns, and the order's whole chain of follow-ups.
// Read through the same visibility rule as Act: a follow-up the caller cannot
// see is not found.
type Detail struct {
	Item     QueueItem
	Order    *engine.Document // nil when the follow-up concerns no order (or one the caller cannot see)
	Customer *engine.Document // nil when unknown or not visible
	Chain    []Step           // the order's follow-ups in matrix order
}

// Step is one follow-up of an order's chain. Steps of other roles are shown
// by their state only: enough to say what a follow-up waits for.
type Step struct {
	ID         string `json:"id"`
	Activity   string `json:"activity"`
	Name       string `json:"name"`
	Role       string `json:"responsible_role"`
	Status     string `json:"status"`
	AssignedTo string `json:"assigned_to,omitempty"`
	DueAt      string `json:"due_at,omitempty"`
	ClosedAt   string `json:"closed_at,omitempty"`
	Visible    bool   `json:"-"` // the caller may open it
}

// OrderDetail is an order with its chain, for the order page.
type OrderDetail struct {
	Order    *engine.Document
	Customer *engine.Document
	Chain    []Step
}

// FollowUp returns follow-up id with its order and chain, as caller may see
// them. Another organisation's id and an invisible one answer not found.
func (s *Service) FollowUp(ctx context.Context, caller engine.Actor, id string) (*Detail, error) {
	actor, read, err := s.resolve(ctx, caller)
	if err != nil {
		return nil, err
	}
	d, err := s.visible(ctx, actor.Org, read, fieldsales.CollFollowUps, id)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no follow-up %q", id)
	}
	body := decode(d)
	deps := stringList(body["depends_on"])
	waiting, err := s.openDependencies(ctx, actor.Org, [][]string{deps})
	if err != nil {
		return nil, err
	}
	status := str(body, "status")
	det := &Detail{Item: QueueItem{FollowUp: *toFollowUp(d), WaitingOn: waiting[0],
		Actionable: status != FUDone && status != FUCancelled && len(waiting[0]) == 0}}
	oid, cid := str(body, "order_id"), str(body, "customer_id")
	if oid != "" {
		od, err := s.order(ctx, actor.Org, read, oid)
		if err != nil {
			return nil, err
		}
		if od != nil {
			det.Order, det.Chain = od.Order, od.Chain
			if cid == "" {
				cid = str(decode(od.Order), "customer_id")
			}
		}
	}
	det.Customer, err = s.visible(ctx, actor.Org, read, fieldsales.CollCustomers, cid)
	return det, err
}

// Order returns order id with its customer and chain of follow-ups, as
// caller may see them; not found like a missing one otherwise.
func (s *Service) Order(ctx context.Context, caller engine.Actor, id string) (*OrderDetail, error) {
	actor, read, err := s.resolve(ctx, caller)
	if err != nil {
		return nil, err
	}
	od, err := s.order(ctx, actor.Org, read, id)
	if err != nil {
		return nil, err
	}
	if od == nil {
		return nil, engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no order %q", id)
	}
	od.Customer, err = s.visible(ctx, actor.Org, read, fieldsales.CollCustomers, str(decode(od.Order), "customer_id"))
	return od, err
}

// order reads an order the read set sees and its chain; nil when missing.
func (s *Service) order(ctx context.Context, org string, read []string, id string) (*OrderDetail, error) {
	o, err := s.visible(ctx, org, read, fieldsales.CollOrders, id)
	if err != nil || o == nil {
		return nil, err
	}
	body := decode(o)
	var m *Matrix
	if v, ok := body["matrix_version"].(string); ok {
		if m, err = s.version(ctx, org, v); err != nil {
			return nil, err
		}
	} else if m, _, err = s.current(ctx, org); err != nil {
		return nil, err
	}
	var refs []engine.DocRef
	for _, a := range m.Activities {
		if a.Trigger.On != OnRaised {
			refs = append(refs, engine.DocRef{Collection: fieldsales.CollFollowUps, ID: FollowUpID(id, a.ID)})
		}
	}
	got, err := s.cfg.Docs.Get(ctx, org, refs)
	if err != nil {
		return nil, err
	}
	od := &OrderDetail{Order: o}
	for _, a := range m.Activities {
		d := got[engine.DocRef{Collection: fieldsales.CollFollowUps, ID: FollowUpID(id, a.ID)}]
		if d == nil || d.Deleted {
			continue
		}
		f := fieldsales.View[fieldsales.FollowUp](d)
		od.Chain = append(od.Chain, Step{ID: d.ID, Activity: a.ID, Name: a.Name, Role: f.ResponsibleRole, Status: f.Status,
			AssignedTo: f.AssignedTo, DueAt: f.DueAt, ClosedAt: f.ClosedAt, Visible: sees(read, d.Scopes)})
	}
	return od, nil
}

// visible reads one document if the read set sees it; nil otherwise.
func (s *Service) visible(ctx context.Context, org string, read []string, coll, id string) (*engine.Document, error) {
	if id == "" {
		return nil, nil
	}
	ref := engine.DocRef{Collection: coll, ID: id}
	got, err := s.cfg.Docs.Get(ctx, org, []engine.DocRef{ref})
	if err != nil {
		return nil, err
	}
	d := got[ref]
	if d == nil || d.Deleted || !sees(read, d.Scopes) {
		return nil, nil
	}
	return d, nil
}

// Customers returns the customers among ids that caller sees (a manager
// also those of the reps they lead), by id; the others are left out. Pages
// show names and sites from them.
func (s *Service) Customers(ctx context.Context, caller engine.Actor, ids []string) (map[string]json.RawMessage, error) {
	actor, read, err := s.resolve(ctx, caller)
	if err != nil {
		return nil, err
	}
	if s.cfg.Directory != nil && actor.HasRole(fieldsales.RoleManager) {
		m, ok, err := s.cfg.Directory.Member(ctx, actor.Org, actor.User)
		if err != nil {
			return nil, err
		}
		if ok {
			read = fieldsales.ReadSet(actor.User, actor.Roles, m.Reports)
		}
	}
	refs := make([]engine.DocRef, 0, len(ids))
	for _, id := range ids {
		refs = append(refs, engine.DocRef{Collection: fieldsales.CollCustomers, ID: id})
	}
	out := map[string]json.RawMessage{}
	if len(refs) == 0 {
		return out, nil
	}
	got, err := s.cfg.Docs.Get(ctx, actor.Org, refs)
	if err != nil {
		return nil, err
	}
	for ref, d := range got {
		if d != nil && !d.Deleted && sees(read, d.Scopes) {
			out[ref.ID] = d.Body
		}
	}
	return out, nil
}

// CustomerList is a page of an admin's customer list.
type CustomerList struct {
	Customers []ListedCustomer
	// Next continues the list ("" at its end); pages hold at most the
	// limit, and a search reads at most customerScanBudget customers per
	// page, so a page may come out short with Next set.
	Next string
}

// ListedCustomer is one customer of the list, with its document.
type ListedCustomer struct {
	ID  string
	Doc json.RawMessage
}

// customerScanBudget bounds the customers one list page reads.
const customerScanBudget = 5000

// AllCustomers lists the organisation's customers for an admin, in the
// order they last changed, those whose name, code or id contain q (any
// case; "" for all), from the position after (a Next). It reads the index
// every customer carries (fieldsales.IndexCustomers), never the whole feed.
// Anyone but an admin is forbidden.
func (s *Service) AllCustomers(ctx context.Context, caller engine.Actor, q, after string, limit int) (CustomerList, error) {
	actor, _, err := s.resolve(ctx, caller)
	if err != nil {
		return CustomerList{}, err
	}
	if !actor.HasRole(fieldsales.RoleAdmin) {
		return CustomerList{}, engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "", "only admins list every customer")
	}
	pos, _ := strconv.ParseInt(after, 10, 64)
	q = strings.ToLower(strings.TrimSpace(q))
	var out CustomerList
	for scanned := 0; scanned < customerScanBudget; {
		pg, err := s.cfg.Docs.Pull(ctx, engine.PullQuery{Org: actor.Org, Scopes: []string{fieldsales.IndexCustomers},
			After: pos, Limit: listPullPage, MaxBytes: 4 << 20})
		if err != nil {
			return CustomerList{}, err
		}
		if pg.Compacted {
			pos = 0
			continue
		}
		for _, c := range pg.Changes {
			scanned++
			pos = c.Seq
			if c.Deleted || c.Evicted || c.Collection != fieldsales.CollCustomers {
				continue
			}
			var d struct{ Name, Code string }
			json.Unmarshal(c.Body, &d)
			if q != "" && !strings.Contains(strings.ToLower(d.Name+" "+d.Code+" "+c.ID), q) {
				continue
			}
			out.Customers = append(out.Customers, ListedCustomer{ID: c.ID, Doc: c.Body})
			if len(out.Customers) == limit {
				out.Next = strconv.FormatInt(pos, 10)
				return out, nil
			}
		}
		if !pg.More {
			return out, nil
		}
		pos = max(pos, pg.Through)
	}
	out.Next = strconv.FormatInt(pos, 10)
	return out, nil
}
