package workflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/money"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Rejection codes an order may carry in its rejection field.
const (
	RejectCustomer = "customer_not_in_scope" // missing, deleted or not assigned to the order's rep
	RejectNoLines  = "no_lines"
	RejectProduct  = "unknown_product" // missing, deleted or inactive
	RejectNoPrice  = "no_price"        // neither the price list nor the product has a price
	RejectQuantity = "bad_quantity"
	RejectCurrency = "currency_mismatch"
	RejectPrice    = "bad_price" // a unit price or discount the schema allows but the money rules refuse
)

// Rejection is why an order was refused.
type Rejection struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Pointer string `json:"pointer,omitempty"`
}

// verdict is what checking a submitted order found.
type verdict struct {
	reject      *Rejection
	creditHold  bool     // the customer's credit status is hold or blocked
	maxDiscount *big.Rat // largest effective discount of a line, percent off the list
	lineTotals  []string // decimal strings, rounded to the currency's minor unit
	total       string   // the sum of lineTotals
}

// checkOrder validates a submitted order against the committed customer,
// products and price list (docs/workflows.md, "Order checks").
func checkOrder(ctx context.Context, rd reader, org string, order *engine.Document, body map[string]any) (verdict, error) {
	rej := func(code, ptr, format string, args ...any) (verdict, error) {
		return verdict{reject: &Rejection{Code: code, Pointer: ptr, Message: fmt.Sprintf(format, args...)}}, nil
	}
	cid := str(body, "customer_id")
	cref := engine.DocRef{Collection: fieldsales.CollCustomers, ID: cid}
	got, err := rd.get(ctx, org, []engine.DocRef{cref})
	if err != nil {
		return verdict{}, err
	}
	c := got[cref]
	if c == nil || c.Deleted {
		return rej(RejectCustomer, "/customer_id", "customer %s does not exist or is not assigned to you", cid)
	}
	cust := decode(c)
	reps, _ := cust["assigned_reps"].([]any)
	if !slices.Contains(reps, any(order.Owner)) {
		return rej(RejectCustomer, "/customer_id", "customer %s does not exist or is not assigned to you", cid)
	}
	lines, _ := body["lines"].([]any)
	if len(lines) == 0 {
		return rej(RejectNoLines, "/lines", "an order needs at least one line")
	}
	refs := []engine.DocRef{}
	plRef := engine.DocRef{Collection: fieldsales.CollPriceLists, ID: str(cust, "price_list_id")}
	if plRef.ID != "" {
		refs = append(refs, plRef)
	}
	for _, l := range lines {
		line, _ := l.(map[string]any)
		refs = append(refs, engine.DocRef{Collection: fieldsales.CollProducts, ID: str(line, "product_id")})
	}
	docs, err := rd.get(ctx, org, refs)
	if err != nil {
		return verdict{}, err
	}
	var prices map[string]any
	if pl := docs[plRef]; plRef.ID != "" && pl != nil && !pl.Deleted {
		plb := decode(pl)
		prices, _ = plb["prices"].(map[string]any)
		if cur, want := str(body, "currency"), str(plb, "currency"); cur != "" && want != "" && cur != want {
			return rej(RejectCurrency, "/currency", "customer %s buys in %s, the order is in %s", cid, want, cur)
		}
	}
	v := verdict{maxDiscount: new(big.Rat)}
	switch st := str(cust, "credit_status"); st {
	case "hold", "blocked":
		v.creditHold = true
	}
	digits := money.Digits(str(body, "currency"))
	total := new(big.Rat)
	for i, l := range lines {
		line, _ := l.(map[string]any)
		at := fmt.Sprintf("/lines/%d", i)
		pid := str(line, "product_id")
		p := docs[engine.DocRef{Collection: fieldsales.CollProducts, ID: pid}]
		if p == nil || p.Deleted {
			return rej(RejectProduct, at+"/product_id", "product %s does not exist", pid)
		}
		pb := decode(p)
		if active, ok := pb["active"].(bool); ok && !active {
			return rej(RejectProduct, at+"/product_id", "product %s is discontinued", pid)
		}
		qty, err := money.Number(line["quantity"], money.QuantityDecimals)
		if err != nil || qty.Sign() <= 0 {
			return rej(RejectQuantity, at+"/quantity", "quantity must be more than 0, with at most %d decimals", money.QuantityDecimals)
		}
		// Reference data written before prices were decimal strings, or by
		// hand in the store, is not a price: no_price rather than a guess.
		list, err := money.Parse(str(prices, pid))
		if err != nil {
			list, err = money.Parse(str(pb, "list_price"))
		}
		if err != nil {
			return rej(RejectNoPrice, at+"/product_id", "product %s has no price for this customer", pid)
		}
		unit := list
		if u, ok := line["unit_price"].(string); ok {
			if unit, err = money.Parse(u); err != nil {
				return rej(RejectPrice, at+"/unit_price", "unit_price: %v", err)
			}
		}
		disc := new(big.Rat)
		if d, ok := line["discount_pct"]; ok {
			if disc, err = money.Number(d, money.DiscountDecimals); err != nil || disc.Sign() < 0 || disc.Cmp(big.NewRat(100, 1)) > 0 {
				return rej(RejectPrice, at+"/discount_pct", "discount_pct must be 0 to 100, with at most %d decimals", money.DiscountDecimals)
			}
		}
		if list.Sign() > 0 {
			// 100 * (1 - net/list), exact: a discount exactly at the limit
			// is within it.
			off := new(big.Rat).Quo(money.Net(unit, disc), list)
			off.Sub(big.NewRat(1, 1), off).Mul(off, big.NewRat(100, 1))
			if off.Cmp(v.maxDiscount) > 0 {
				v.maxDiscount = off
			}
		}
		lt := money.LineTotal(qty, unit, disc, digits)
		v.lineTotals = append(v.lineTotals, money.Format(lt, digits))
		total.Add(total, lt)
	}
	v.total = money.Format(total, digits)
	return v, nil
}

// limitRat is a discount limit of the matrix as the exact decimal it was
// written as (12.5, not 12.4999...).
func limitRat(pct float64) *big.Rat {
	r, err := money.Number(pct, 6)
	if err != nil {
		return new(big.Rat).SetFloat64(pct)
	}
	return r
}

// FollowUpID is the deterministic id of an order's follow-up for activity:
// a retried submit finds the same ids, so nothing is created twice. Ids
// that would pass the protocol's 128 characters use a hash of the order id.
func FollowUpID(orderID, activity string) string {
	id := "fu-" + orderID + "-" + activity
	if len(id) <= 128 {
		return id
	}
	h := sha256.Sum256([]byte(orderID))
	return "fu-" + hex.EncodeToString(h[:16]) + "-" + activity
}

// reconcileOrder brings one order's consequences up to date.
func (s *Service) reconcileOrder(ctx context.Context, org string, order *engine.Document) error {
	return s.reconcileOrders(ctx, org, []*engine.Document{order})
}

// reconcileOrders brings orders' consequences up to date: a submitted order
// not yet accepted is checked and routed; any other is given the follow-ups
// its status and completed follow-ups trigger (or, cancelled, has its open
// ones closed). The sweep and the follow-up API call it with committed
// orders; a device's push carries the same plan out inside its own write
// (effects.go). However many orders, this costs two rounds of server
// writes: every routing move, then every follow-up. Idempotent.
func (s *Service) reconcileOrders(ctx context.Context, org string, orders []*engine.Document) error {
	if len(orders) == 0 {
		return nil
	}
	// Recorded before anything is written, so the sweep knows the
	// organisation even if every write below fails.
	if err := s.noteOrg(ctx, org); err != nil {
		return err
	}
	plans, err := s.planOrders(ctx, live{s}, org, orders)
	if err != nil {
		return err
	}
	var moves []engine.UpsertDoc
	for _, p := range plans {
		if p.move != nil {
			moves = append(moves, *p.move)
		}
	}
	moved, err := s.writeAll(ctx, org, moves)
	if err != nil {
		return err
	}
	var docs []engine.UpsertDoc
	var carried []orderPlan
	grants := map[engine.DocRef][]string{}
	j := 0
	for _, p := range plans {
		if p.move != nil {
			j++
			if !moved[j-1] {
				continue // someone moved the order first: that decision is void
			}
		}
		docs = append(docs, p.follow...)
		carried = append(carried, p)
		for ref, keys := range p.grants {
			grants[ref] = append(grants[ref], keys...)
		}
	}
	took, err := s.writeAll(ctx, org, docs)
	if err != nil {
		return err
	}
	// An order one of whose follow-up writes did not take effect (the
	// follow-up changed since it was read: claimed, escalated) stays
	// unsettled, so the sweep decides it again from what is there now.
	var settle []engine.UpsertDoc
	for _, p := range carried {
		all := !slices.Contains(took[:len(p.follow)], false)
		took = took[len(p.follow):]
		if all && p.settle != nil {
			settle = append(settle, *p.settle)
		}
	}
	for ref, keys := range grants {
		slices.Sort(keys)
		grants[ref] = slices.Compact(keys)
	}
	// The roles of the order's follow-ups see the order and its customer:
	// granted by the follow-ups' own writes, and again here before the
	// order is settled, for a crash in between.
	if err := s.cfg.Writer.Grant(ctx, org, grants); err != nil {
		return err
	}
	// Last, once every effect above is durable: the orders are settled in
	// the status they were carried out for (fieldsales.IndexUnsettledOrders).
	// A crash before this write leaves them to the sweep.
	_, err = s.writeAll(ctx, org, settle)
	return err
}

// orderPlan is what one order's state requires, in the order it is
// written: a submitted order's routing move (conditional: void when someone
// moved the order first), its follow-ups' writes, and the write recording
// the order as settled; grants are the role keys its follow-ups give it and
// its customer.
type orderPlan struct {
	move   *engine.UpsertDoc
	follow []engine.UpsertDoc
	settle *engine.UpsertDoc
	grants map[engine.DocRef][]string
}

// planOrders decides what each order's state requires, reading through rd.
// The matrix in force is read once for all of them.
func (s *Service) planOrders(ctx context.Context, rd reader, org string, orders []*engine.Document) ([]orderPlan, error) {
	var cur *Matrix
	var curVer string
	current := func() (*Matrix, string, error) {
		if cur != nil {
			return cur, curVer, nil
		}
		var err error
		cur, curVer, err = rd.current(ctx, org)
		return cur, curVer, err
	}
	var plans []orderPlan
	for _, o := range orders {
		body := decode(o)
		var p orderPlan
		var m *Matrix
		var ver string
		switch {
		case str(body, "status") == StatusSubmitted && body["submitted_at"] == nil:
			doc, mm, v, err := s.planRoute(ctx, rd, org, o, body, current)
			if err != nil {
				return nil, err
			}
			p.move, m, ver = &doc, mm, v
		case str(body, "matrix_version") != "":
			mm, err := rd.version(ctx, org, str(body, "matrix_version"))
			if err != nil {
				return nil, err
			}
			m, ver = mm, str(body, "matrix_version")
		default:
			// Never routed: a draft, or cancelled before submission, which
			// settles as it is.
			if str(body, "status") != StatusSubmitted {
				if d, ok := settleOrder(o.ID, body); ok {
					p.settle = &d
				}
			}
			if p.settle != nil {
				plans = append(plans, p)
			}
			continue
		}
		if d, ok := settleOrder(o.ID, body); ok {
			p.settle = &d
		}
		var roles []string
		var err error
		body = roundTrip(body)
		if str(body, "status") == StatusCancelled {
			p.follow, err = planCancel(ctx, rd, org, o.ID, m, s.now())
		} else {
			p.follow, roles, err = planEnsure(ctx, rd, org, o, body, m, ver, s.now())
		}
		if err != nil {
			return nil, err
		}
		orderRef := engine.DocRef{Collection: fieldsales.CollOrders, ID: o.ID}
		custRef := engine.DocRef{Collection: fieldsales.CollCustomers, ID: str(body, "customer_id")}
		p.grants = map[engine.DocRef][]string{}
		for _, r := range roles {
			p.grants[orderRef] = append(p.grants[orderRef], fieldsales.RoleScope(r))
			if custRef.ID != "" {
				p.grants[custRef] = append(p.grants[custRef], fieldsales.RoleScope(r))
			}
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// settleOrder is the write that records an order as settled in its current
// status, while it still is in it; false when it is settled already or has
// nothing to carry out (a draft).
func settleOrder(id string, body map[string]any) (engine.UpsertDoc, bool) {
	st := str(body, "status")
	if st == "" || st == StatusDraft || str(body, fieldsales.FieldSettledStatus) == st {
		return engine.UpsertDoc{}, false
	}
	return engine.UpsertDoc{Collection: fieldsales.CollOrders, ID: id, Fields: map[string]json.RawMessage{fieldsales.FieldSettledStatus: raw(st)},
		Expect: &engine.Expect{Field: "status", In: []string{st}}}, true
}

// planRoute checks a submitted order and decides its move: to rejected,
// credit_hold or price_approval, or accepted (submitted_at, total), as a
// conditional write (only while it is still submitted). body is updated to
// what the order will be.
func (s *Service) planRoute(ctx context.Context, rd reader, org string, order *engine.Document, body map[string]any,
	current func() (*Matrix, string, error)) (engine.UpsertDoc, *Matrix, string, error) {
	ver := str(body, "matrix_version")
	var m *Matrix
	var err error
	if ver == "" {
		m, ver, err = current()
	} else {
		m, err = rd.version(ctx, org, ver) // back from a hold: the same version
	}
	if err != nil {
		return engine.UpsertDoc{}, nil, "", err
	}
	v, err := checkOrder(ctx, rd, org, order, body)
	if err != nil {
		return engine.UpsertDoc{}, nil, "", err
	}
	fus, err := followUpsOf(ctx, rd, org, order.ID, m)
	if err != nil {
		return engine.UpsertDoc{}, nil, "", err
	}
	now := stamp(s.now())
	f := map[string]any{"matrix_version": ver}
	hold := func(status, reason string) {
		f["status"], f["status_reason"], f["status_changed_at"] = status, reason, now
	}
	switch {
	case v.reject != nil:
		hold(StatusRejected, v.reject.Message)
		f["rejection"] = v.reject
	case v.creditHold && m.handles(StatusCreditHold) && !m.released(StatusCreditHold, fus):
		hold(StatusCreditHold, "the customer's credit is on hold: credit control must release it")
	case v.maxDiscount.Cmp(limitRat(m.Policy.DiscountLimit(order.Owner))) > 0 && m.handles(StatusPriceApproval) && !m.released(StatusPriceApproval, fus):
		hold(StatusPriceApproval, fmt.Sprintf("a discount of %s%% is above your limit of %v%%: it needs price approval",
			v.maxDiscount.FloatString(2), m.Policy.DiscountLimit(order.Owner)))
	default:
		f["submitted_at"], f["total"], f["line_totals"] = now, v.total, v.lineTotals
	}
	doc := engine.UpsertDoc{Collection: fieldsales.CollOrders, ID: order.ID, Fields: map[string]json.RawMessage{},
		Expect: &engine.Expect{Field: "status", In: []string{StatusSubmitted}}}
	for k, val := range f {
		doc.Fields[k] = raw(val)
		body[k] = val
	}
	return doc, m, ver, nil
}

// handles reports whether an activity is triggered by the order status:
// without one, holding an order there would strand it.
func (m *Matrix) handles(status string) bool {
	for _, a := range m.Activities {
		if a.Trigger.On == OnOrderStatus && a.Trigger.Status == status {
			return true
		}
	}
	return false
}

// released reports whether an activity triggered by status was completed
// for the order: the hold was cleared once and is not applied again.
func (m *Matrix) released(status string, fus map[string]map[string]any) bool {
	for _, a := range m.Activities {
		if a.Trigger.On == OnOrderStatus && a.Trigger.Status == status && str(fus[a.ID], "status") == "done" {
			return true
		}
	}
	return false
}

// mainLine is the order lifecycle after confirmation, in order: an
// order_status trigger for one of them fires for every later one too, so a
// follow-up interrupted by a crash is still created after the order moved on.
var mainLine = []string{StatusConfirmed, StatusPartDelivered, StatusDelivered, StatusInvoiced, StatusClosed}

func (a *Activity) fires(status string, accepted bool, fus map[string]map[string]any) bool {
	switch a.Trigger.On {
	case OnOrderStatus:
		if a.Trigger.Status == StatusSubmitted {
			return accepted
		}
		if a.Trigger.Status == status {
			return true
		}
		t, c := slices.Index(mainLine, a.Trigger.Status), slices.Index(mainLine, status)
		return t >= 0 && c >= t
	case OnActivityDone:
		return str(fus[a.Trigger.Activity], "status") == "done"
	}
	return false
}

// followUpsOf reads the order's matrix follow-ups, by activity.
func followUpsOf(ctx context.Context, rd reader, org, orderID string, m *Matrix) (map[string]map[string]any, error) {
	var refs []engine.DocRef
	for _, a := range m.Activities {
		if a.Trigger.On != OnRaised {
			refs = append(refs, engine.DocRef{Collection: fieldsales.CollFollowUps, ID: FollowUpID(orderID, a.ID)})
		}
	}
	got, err := rd.get(ctx, org, refs)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]any{}
	for _, a := range m.Activities {
		if d := got[engine.DocRef{Collection: fieldsales.CollFollowUps, ID: FollowUpID(orderID, a.ID)}]; d != nil {
			out[a.ID] = decode(d)
			if d.Deleted {
				out[a.ID] = map[string]any{"status": "deleted"}
			}
		}
	}
	return out, nil
}

// planEnsure returns the create-only writes of the follow-ups the order's
// state triggers and that do not exist yet, and the responsible roles of
// all its follow-ups, existing or to be written.
func planEnsure(ctx context.Context, rd reader, org string, order *engine.Document, body map[string]any, m *Matrix, ver string, now time.Time) ([]engine.UpsertDoc, []string, error) {
	status := str(body, "status")
	switch status {
	case StatusDraft, StatusRejected, StatusCancelled, "":
		return nil, nil, nil
	}
	fus, err := followUpsOf(ctx, rd, org, order.ID, m)
	if err != nil {
		return nil, nil, err
	}
	var roles []string
	accepted := body["submitted_at"] != nil
	var docs []engine.UpsertDoc
	for i := range m.Activities {
		a := &m.Activities[i]
		if fu := fus[a.ID]; fu != nil {
			if r := str(fu, fieldsales.FieldResponsibleRole); r != "" {
				roles = append(roles, r)
			}
			// The SLA of a follow-up that waited for others runs from when
			// the last of them was done, not from the order's submission:
			// an invoice cannot be late while the delivery is still out.
			if d, ok := startDue(a, fu, fus, order.ID, now); ok {
				docs = append(docs, d)
			}
			continue
		}
		if !a.fires(status, accepted, fus) {
			continue
		}
		deps := make([]string, 0, len(a.DependsOn))
		for _, d := range a.DependsOn {
			deps = append(deps, FollowUpID(order.ID, d))
		}
		f := map[string]any{
			"activity": a.ID, "title": a.Name, "order_id": order.ID, "customer_id": str(body, "customer_id"),
			"rep_id": order.Owner, "status": "open", "matrix_version": ver,
			"depends_on": deps, "created_at": stamp(now),
			"history": []fieldsales.FollowUpEvent{event(now, HistCreated, "", "")},
		}
		if depsDone(a, fus) {
			f["due_at"] = stamp(now.Add(a.sla))
		}
		routing(f, a)
		roles = append(roles, a.Responsible)
		doc := engine.UpsertDoc{Collection: fieldsales.CollFollowUps, ID: FollowUpID(order.ID, a.ID), CreateOnly: true,
			Fields: map[string]json.RawMessage{}}
		for k, v := range f {
			doc.Fields[k] = raw(v)
		}
		docs = append(docs, doc)
	}
	return docs, roles, nil
}

// depsDone reports whether every activity a depends on is done.
func depsDone(a *Activity, fus map[string]map[string]any) bool {
	for _, d := range a.DependsOn {
		if str(fus[d], "status") != "done" {
			return false
		}
	}
	return true
}

// startDue returns the write that starts the SLA clock of an existing
// follow-up created while it waited for others, once they are all done.
// The write holds only while due_at is still unset, so a retry or a
// concurrent reconcile sets it once.
func startDue(a *Activity, fu map[string]any, fus map[string]map[string]any, orderID string, now time.Time) (engine.UpsertDoc, bool) {
	switch str(fu, "status") {
	case "open", "claimed", "in_progress", "blocked":
	default:
		return engine.UpsertDoc{}, false
	}
	if fu["due_at"] != nil || !depsDone(a, fus) {
		return engine.UpsertDoc{}, false
	}
	return engine.UpsertDoc{Collection: fieldsales.CollFollowUps, ID: FollowUpID(orderID, a.ID),
		Fields: map[string]json.RawMessage{"due_at": raw(stamp(now.Add(a.sla)))},
		Expect: &engine.Expect{Field: "due_at", In: []string{""}}}, true
}

// planCancel returns the writes that close the follow-ups of a cancelled
// order that are not done, each only while it is still in the state it was
// read in: work the back office finished stays done.
// Each expects the version it read, as its history grows from that read; a
// follow-up that changed meanwhile is left for the next reconcile (the
// order stays unsettled until every write took effect).
func planCancel(ctx context.Context, rd reader, org, orderID string, m *Matrix, at time.Time) ([]engine.UpsertDoc, error) {
	var refs []engine.DocRef
	for _, a := range m.Activities {
		if a.Trigger.On != OnRaised {
			refs = append(refs, engine.DocRef{Collection: fieldsales.CollFollowUps, ID: FollowUpID(orderID, a.ID)})
		}
	}
	got, err := rd.get(ctx, org, refs)
	if err != nil {
		return nil, err
	}
	var docs []engine.UpsertDoc
	for _, ref := range refs {
		d := got[ref]
		if d == nil || d.Deleted {
			continue
		}
		body := decode(d)
		st := str(body, "status")
		switch st {
		case "open", "claimed", "in_progress", "blocked":
		default:
			continue
		}
		docs = append(docs, engine.UpsertDoc{Collection: fieldsales.CollFollowUps, ID: ref.ID,
			Fields: map[string]json.RawMessage{"status": raw("cancelled"), "closed_at": raw(stamp(at)),
				"history": withEvent(body, event(at, HistCancelled, "", "the order was cancelled"))},
			Expect: &engine.Expect{Field: "status", In: []string{st}, Version: d.Version}})
	}
	return docs, nil
}

// routing sets the matrix's roles of a follow-up.
func routing(f map[string]any, a *Activity) {
	f[fieldsales.FieldResponsibleRole] = a.Responsible
	f["accountable_role"] = a.Accountable
	f["consulted_roles"] = nonNil(a.Consulted)
	f["informed_roles"] = nonNil(a.Informed)
	f["notify_on_done"] = nonNil(a.NotifyOnDone)
	f["notify_on_blocked"] = nonNil(a.NotifyOnBlocked)
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// write makes the workflow's trusted writes. moved is false when a
// precondition no longer held (someone else moved the document first): the
// caller's decision is void, which is not an error.
func (s *Service) write(ctx context.Context, org string, docs ...engine.UpsertDoc) (moved bool, err error) {
	ok, err := s.writeAll(ctx, org, docs)
	if err != nil {
		return false, err
	}
	for _, m := range ok {
		if !m {
			return false, nil
		}
	}
	return true, nil
}

// writeAll makes many workflow writes in batches and reports, per
// document, whether it took effect (false: its precondition no longer held).
func (s *Service) writeAll(ctx context.Context, org string, docs []engine.UpsertDoc) ([]bool, error) {
	out := make([]bool, 0, len(docs))
	for start := 0; start < len(docs); start += writeBatch {
		chunk := docs[start:min(start+writeBatch, len(docs))]
		outs, err := s.cfg.Writer.Upsert(ctx, system(org), sourceWorkflow, chunk)
		if err != nil {
			return nil, err
		}
		for i, o := range outs {
			ok, err := tookEffect(chunk[i], o)
			if err != nil {
				return nil, err
			}
			out = append(out, ok)
		}
	}
	return out, nil
}

// writeBatch bounds one server write (the engine takes up to its
// max-mutations, 500 by default).
const writeBatch = 100

func tookEffect(d engine.UpsertDoc, o engine.Outcome) (bool, error) {
	if o.Status != engine.StatusRejected {
		return true, nil
	}
	if o.Error.Code == engine.CodePreconditionFailed {
		return false, nil
	}
	return false, fmt.Errorf("workflow: write of %s/%s rejected: %s: %s", d.Collection, d.ID, o.Error.Code, o.Error.Message)
}

// roundTrip normalises a body built in memory (Rejection structs) to what
// decoding the stored document gives.
func roundTrip(body map[string]any) map[string]any {
	var out map[string]any
	json.Unmarshal(raw(body), &out)
	return out
}
