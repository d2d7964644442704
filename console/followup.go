package console

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// followUpView is the follow-up page.
type followUpView struct {
	ID, Title, Activity, ActivityName, Role, Status, AssignedTo, Due, Description string
	BlockedReason, Note, Result                                                   string
	Overdue, Escalated, Actionable, Closed                                        bool
	WaitingOn                                                                     []string
	History                                                                       []event
	Order                                                                         *orderView
	Requires                                                                      []resultField
	// Refusal is the server's answer to the last action; Errors holds
	// messages by form field (reason, note, result field) and "" for the rest.
	Errors map[string]string
	Form   struct{ Reason, Note string }
	CanAct bool
}

type resultField struct{ Name, Label, Value, Error string }

type event struct{ At, What string }

// orderView is an order as the follow-up and order pages show it.
type orderView struct {
	ID, Status, Customer, CustomerID, Rep, Currency, Total, Notes, ERP, Rejection, Requested string
	Lines                                                                                    []lineView
	Timeline                                                                                 []event
	Chain                                                                                    []stepView
	Photos                                                                                   []photoView // the order's and its follow-ups' files (attachments.go)
	// Page: the order is the page (its heading is the page's h1), not a
	// section of a follow-up's page.
	Page bool
}

type lineView struct{ Product, Quantity, UnitPrice, Discount, Total string }

type stepView struct {
	ID, Name, Role, Status, AssignedTo, Due, Closed string
	Link                                            bool
}

func (cs *Console) followUpPage(c *fiber.Ctx) error {
	v, err := cs.followUp(c, strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	return cs.render(c, "followup", view{Title: v.Title, User: userOf(c), CSRF: csrfOf(c), Data: v})
}

func (cs *Console) followUp(c *fiber.Ctx, id string) (*followUpView, error) {
	oi, err := cs.org(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	det, err := cs.cfg.Workflow.FollowUp(ctx, actorOf(c), id)
	if err != nil {
		return nil, err
	}
	var d fieldsales.FollowUp
	json.Unmarshal(det.Item.Doc, &d)
	u := userOf(c)
	v := &followUpView{ID: det.Item.ID, Title: firstNonEmpty(d.Title, oi.activityName[d.Activity], d.Activity),
		Activity: d.Activity, ActivityName: oi.activityName[d.Activity], Role: roleLabel(d.ResponsibleRole), Status: d.Status,
		Due: oi.when(d.DueAt), Description: d.Description, BlockedReason: d.BlockedReason, Note: d.Note,
		Escalated: d.EscalatedAt != "", Actionable: det.Item.Actionable,
		Closed: d.Status == workflow.FUDone || d.Status == workflow.FUCancelled, Errors: map[string]string{},
		CanAct: u.HasRole(d.ResponsibleRole) || u.HasRole(fieldsales.RoleAdmin)}
	if d.AssignedTo != "" {
		v.AssignedTo = oi.name(d.AssignedTo)
	}
	var result map[string]any
	if json.Unmarshal(d.Result, &result) == nil && len(result) > 0 {
		b, _ := json.Marshal(result)
		v.Result = string(b)
	}
	if due, err := time.Parse(time.RFC3339Nano, d.DueAt); err == nil {
		v.Overdue = !v.Closed && cs.cfg.Now().After(due)
	}
	for _, w := range det.Item.WaitingOn {
		v.WaitingOn = append(v.WaitingOn, oi.step(w, d.OrderID))
	}
	v.History = oi.history(&d)
	for _, f := range oi.requires[d.Activity] {
		v.Requires = append(v.Requires, resultField{Name: f, Label: roleLabel(f)})
	}
	if det.Order != nil {
		v.Order = cs.orderOf(oi, det.Order, det.Customer, det.Chain)
	}
	return v, nil
}

// act runs one action (claim, start, block, complete) through the workflow,
// exactly as POST /v1/followups/:id/:action does; a refusal shows the
// server's message next to the field its pointer names.
func (cs *Console) act(c *fiber.Ctx) error {
	id, kind := strings.Clone(c.Params("id")), strings.Clone(c.Params("action"))
	if !slices.Contains([]string{workflow.ActClaim, workflow.ActStart, workflow.ActBlock, workflow.ActComplete}, kind) {
		return errNotFound
	}
	a := workflow.Action{Kind: kind, Reason: strings.Clone(c.FormValue("reason")), Note: strings.Clone(c.FormValue("note"))}
	if kind == workflow.ActComplete {
		a.Result = map[string]any{}
		c.Request().PostArgs().VisitAll(func(k, val []byte) {
			if name, ok := strings.CutPrefix(string(k), "result."); ok && len(val) > 0 {
				a.Result[name] = string(val)
			}
		})
		if len(a.Result) == 0 {
			a.Result = nil
		}
	}
	ctx, cancel := cs.callCtx()
	_, err := cs.cfg.Workflow.Act(ctx, actorOf(c), id, a)
	cancel()
	var e *engine.Error
	if err == nil {
		return c.Redirect("/console/followups/"+id, fiber.StatusSeeOther)
	}
	if !errors.As(err, &e) || (e.Kind != engine.KindInvalid && e.Kind != engine.KindConflict && e.Kind != engine.KindForbidden) {
		return err
	}
	v, verr := cs.followUp(c, id)
	if verr != nil {
		return verr
	}
	v.Form.Reason, v.Form.Note = a.Reason, a.Note
	field := strings.TrimPrefix(e.Pointer, "/")
	field = strings.TrimPrefix(field, "result/")
	matched := false
	for i := range v.Requires {
		v.Requires[i].Value, _ = a.Result[v.Requires[i].Name].(string)
		if v.Requires[i].Name == field {
			v.Requires[i].Error, matched = e.Message, true
		}
	}
	if !matched {
		if field != "reason" && field != "note" {
			field = ""
		}
		v.Errors[field] = e.Message
	}
	status := fiber.StatusUnprocessableEntity
	if e.Kind == engine.KindConflict {
		status = fiber.StatusConflict
	} else if e.Kind == engine.KindForbidden {
		status = fiber.StatusForbidden
	}
	return cs.render(c.Status(status), "followup", view{Title: v.Title, User: userOf(c), CSRF: csrfOf(c), Data: v})
}

func (cs *Console) orderPage(c *fiber.Ctx) error {
	oi, err := cs.org(c)
	if err != nil {
		return err
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	od, err := cs.cfg.Workflow.Order(ctx, actorOf(c), strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	v := cs.orderOf(oi, od.Order, od.Customer, od.Chain)
	parents := []engine.DocRef{{Collection: fieldsales.CollOrders, ID: od.Order.ID}}
	for _, s := range od.Chain {
		if s.Visible {
			parents = append(parents, engine.DocRef{Collection: fieldsales.CollFollowUps, ID: s.ID})
		}
	}
	if v.Photos, err = cs.photos(ctx, oi, actorOf(c), parents...); err != nil {
		return err
	}
	v.Page = true
	return cs.render(c, "order", view{Title: "Order " + v.ID, User: userOf(c), CSRF: csrfOf(c), Data: v})
}

// orderOf turns an order document into its view. Money is shown as the
// decimal strings the order stores: no float ever touches it.
func (cs *Console) orderOf(oi *orgInfo, o, customer *engine.Document, chain []workflow.Step) *orderView {
	var d struct {
		Status, Currency, Total, Notes string
		CustomerID                     string   `json:"customer_id"`
		ERP                            string   `json:"erp_number"`
		Requested                      string   `json:"requested_delivery"`
		StatusReason                   string   `json:"status_reason"`
		SubmittedAt                    string   `json:"submitted_at"`
		ConfirmedAt                    string   `json:"confirmed_at"`
		DeliveredAt                    string   `json:"delivered_at"`
		InvoicedAt                     string   `json:"invoiced_at"`
		ChangedAt                      string   `json:"status_changed_at"`
		LineTotals                     []string `json:"line_totals"`
		Rejection                      *struct {
			Code, Message string
		}
		Lines []struct {
			Product   string          `json:"product_id"`
			Quantity  json.Number     `json:"quantity"`
			UnitPrice string          `json:"unit_price"`
			Discount  json.Number     `json:"discount_pct"`
			Extra     json.RawMessage `json:"-"`
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(o.Body)))
	dec.UseNumber()
	dec.Decode(&d)
	v := &orderView{ID: o.ID, Status: d.Status, Currency: d.Currency, Total: d.Total, Notes: d.Notes, ERP: d.ERP,
		Customer: d.CustomerID, CustomerID: d.CustomerID, Rep: oi.name(o.Owner), Requested: d.Requested}
	if customer != nil {
		var cust struct{ Name string }
		json.Unmarshal(customer.Body, &cust)
		v.Customer = firstNonEmpty(cust.Name, d.CustomerID)
	}
	if d.Rejection != nil {
		v.Rejection = d.Rejection.Message
	} else if d.StatusReason != "" {
		v.Rejection = d.StatusReason
	}
	for i, l := range d.Lines {
		lv := lineView{Product: l.Product, Quantity: l.Quantity.String(), UnitPrice: l.UnitPrice, Discount: l.Discount.String()}
		if i < len(d.LineTotals) {
			lv.Total = d.LineTotals[i]
		}
		v.Lines = append(v.Lines, lv)
	}
	add := func(at, what string) {
		if at != "" {
			v.Timeline = append(v.Timeline, event{At: oi.when(at), What: what})
		}
	}
	add(d.SubmittedAt, "submitted")
	add(d.ConfirmedAt, "confirmed")
	add(d.DeliveredAt, "delivered")
	add(d.InvoicedAt, "invoiced")
	if d.ChangedAt != "" && d.Status != "confirmed" && d.Status != "delivered" && d.Status != "invoiced" && d.Status != "submitted" {
		add(d.ChangedAt, "now "+d.Status)
	}
	for _, s := range chain {
		sv := stepView{ID: s.ID, Name: firstNonEmpty(s.Name, s.Activity), Role: roleLabel(s.Role), Status: s.Status,
			Due: oi.when(s.DueAt), Closed: oi.when(s.ClosedAt), Link: s.Visible}
		if s.AssignedTo != "" {
			sv.AssignedTo = oi.name(s.AssignedTo)
		}
		v.Chain = append(v.Chain, sv)
	}
	return v
}

// history is what happened to follow-up d, oldest first, people by name.
// A follow-up last written before the server recorded histories has none:
// its story is told from the fields that remain, without when it was
// claimed.
func (oi *orgInfo) history(d *fieldsales.FollowUp) []event {
	var out []event
	for _, e := range d.History {
		who := oi.name(e.By)
		var what string
		switch e.Action {
		case workflow.HistCreated:
			what = "created for " + roleLabel(d.ResponsibleRole)
		case workflow.HistRaised:
			what = "raised by " + who
		case workflow.HistBlocked:
			what = "blocked by " + who + ": " + e.Reason
		case workflow.HistCancelled:
			what = "cancelled"
			if e.Reason != "" {
				what += ": " + e.Reason
			}
		case workflow.HistEscalated:
			what = "escalated to " + roleLabel(d.AccountableRole) + ": past its due time"
		default: // claimed, started, completed
			what = e.Action + " by " + who
		}
		out = append(out, event{At: oi.when(e.At), What: what})
	}
	if len(out) > 0 {
		return out
	}
	add := func(at, what string) {
		if at != "" {
			out = append(out, event{At: oi.when(at), What: what})
		}
	}
	add(d.CreatedAt, "created for "+roleLabel(d.ResponsibleRole))
	if d.AssignedTo != "" {
		out = append(out, event{What: "claimed by " + oi.name(d.AssignedTo)})
	}
	add(d.BlockedAt, "blocked")
	add(d.EscalatedAt, "escalated: past its due time")
	if d.ClosedBy != "" {
		add(d.ClosedAt, d.Status+" by "+oi.name(d.ClosedBy))
	}
	return out
}
