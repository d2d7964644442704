package workflow

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

var _ engine.Hook = (*Service)(nil)

// Collections implements sync.Hook: raised follow-ups are sent to their
// queue. Orders are carried out inside the push's own write (effects.go).
func (s *Service) Collections() []string {
	return []string{fieldsales.CollFollowUps}
}

// AfterPush implements sync.Hook. Every step is a create-only or
// conditional write decided from the committed documents, so running it
// again (the device retried) finds the work done and changes nothing.
func (s *Service) AfterPush(ctx context.Context, actor engine.Actor, docs []*engine.Document) error {
	var orders []*engine.Document
	for _, d := range docs {
		switch d.Collection {
		case fieldsales.CollOrders:
			orders = append(orders, d)
		case fieldsales.CollFollowUps:
			if err := s.routeRaised(ctx, actor.Org, d); err != nil {
				return fmt.Errorf("workflow: %s/%s: %w", d.Collection, d.ID, err)
			}
		}
	}
	if len(orders) == 0 {
		return nil
	}
	if err := s.reconcileOrders(ctx, actor.Org, orders); err != nil {
		return fmt.Errorf("workflow: orders: %w", err)
	}
	return nil
}

// CodeNotRaisable is the rejection of a raised follow-up whose activity the
// matrix does not list as raised by hand.
const CodeNotRaisable = "activity_not_raisable"

// routeRaised sends a follow-up created over sync to the responsible role
// of its activity, with the SLA's due time; the rep who raised it is
// informed, never responsible. A follow-up that is routed already (every
// matrix-created one) is left alone.
func (s *Service) routeRaised(ctx context.Context, org string, d *engine.Document) error {
	body := decode(d)
	if str(body, fieldsales.FieldResponsibleRole) != "" || str(body, "status") == "cancelled" {
		return nil
	}
	m, ver, err := s.current(ctx, org)
	if err != nil {
		return err
	}
	now := s.now()
	f := map[string]any{"matrix_version": ver, "rep_id": d.Owner}
	a := m.Activity(str(body, "activity"))
	// No device writes a history (it is read-only): this starts it.
	f["history"] = withEvent(body, event(now, HistRaised, d.Owner, ""))
	if a == nil || a.Trigger.On != OnRaised {
		f["status"], f["closed_at"] = "cancelled", stamp(now)
		f["rejection"] = Rejection{Code: CodeNotRaisable, Pointer: "/activity",
			Message: fmt.Sprintf("%q is not an activity that can be raised by hand in matrix version %s", str(body, "activity"), ver)}
		f["history"] = []fieldsales.FollowUpEvent{event(now, HistRaised, d.Owner, ""),
			event(now, HistCancelled, "", f["rejection"].(Rejection).Message)}
	} else {
		routing(f, a)
		f["title"], f["status"], f["due_at"], f["created_at"] = a.Name, "open", stamp(now.Add(a.sla)), stamp(now)
	}
	doc := engine.UpsertDoc{Collection: fieldsales.CollFollowUps, ID: d.ID, Fields: map[string]json.RawMessage{},
		Expect: &engine.Expect{Field: fieldsales.FieldResponsibleRole, In: []string{""}}}
	for k, v := range f {
		doc.Fields[k] = raw(v)
	}
	if err := s.noteOrg(ctx, org); err != nil {
		return err
	}
	_, err = s.write(ctx, org, doc)
	return err
}
