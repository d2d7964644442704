package webhook

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// event is one thing that happened, derived from one committed change.
type event struct {
	typ        string
	collection string
	docID      string
	state      string    // what makes this occurrence distinct (see DeliveryID)
	at         time.Time // when it happened, as the document says
	role       string    // follow-ups: responsible role (for filters)
	activity   string    // follow-ups: activity (for filters)
	data       map[string]any
}

// The fields the events read. Bodies carry ids and the fields the event
// needs, never whole documents.
type followUpDoc = fieldsales.FollowUp

type orderDoc = fieldsales.Order

type visitLogDoc = fieldsales.VisitLog

// watched are the collections events come from.
var watched = []string{"follow_ups", "orders", "visit_logs"}

// events returns what a committed change announces. The feed keeps a
// document's latest change only, so events are derived from states, not
// from differences: a follow-up seen done announces follow_up.done (and
// follow_up.created, which it always was); a claim that was overtaken by the
// completion before the tailer read it is not announced on its own.
func events(c engine.Change) []event {
	if c.Deleted || c.Evicted || !slices.Contains(watched, c.Collection) {
		return nil
	}
	switch c.Collection {
	case "follow_ups":
		var f followUpDoc
		if json.Unmarshal(c.Body, &f) != nil {
			return nil
		}
		data := func(extra map[string]any) map[string]any {
			m := map[string]any{"follow_up_id": c.ID, "order_id": f.OrderID, "customer_id": f.CustomerID, "rep_id": f.RepID,
				"activity": f.Activity, "responsible_role": f.ResponsibleRole, "status": f.Status}
			if f.DueAt != "" {
				m["due_at"] = f.DueAt
			}
			for k, v := range extra {
				m[k] = v
			}
			return m
		}
		mk := func(typ, state, at string, extra map[string]any) event {
			return event{typ: typ, collection: c.Collection, docID: c.ID, state: state, at: stamp(at), role: f.ResponsibleRole,
				activity: f.Activity, data: data(extra)}
		}
		out := []event{mk(EventFollowUpCreated, "created|"+f.CreatedAt, f.CreatedAt, nil)}
		switch f.Status {
		case "claimed", "in_progress":
			if f.AssignedTo != "" {
				out = append(out, mk(EventFollowUpClaimed, "claimed|"+f.AssignedTo, "", map[string]any{"assigned_to": f.AssignedTo}))
			}
		case "done":
			extra := map[string]any{"closed_by": f.ClosedBy, "closed_at": f.ClosedAt}
			if len(f.Result) > 0 && string(f.Result) != "null" {
				extra["result"] = f.Result
			}
			out = append(out, mk(EventFollowUpDone, "done|"+f.ClosedAt, f.ClosedAt, extra))
		case "blocked":
			out = append(out, mk(EventFollowUpBlocked, "blocked|"+f.BlockedAt+"|"+f.BlockedReason, f.BlockedAt,
				map[string]any{"blocked_reason": f.BlockedReason, "blocked_at": f.BlockedAt}))
		}
		if f.EscalatedAt != "" && f.Status != "done" && f.Status != "cancelled" {
			out = append(out, mk(EventFollowUpEscalated, "escalated|"+f.EscalatedAt, f.EscalatedAt, map[string]any{"escalated_at": f.EscalatedAt}))
		}
		return out
	case "orders":
		var o orderDoc
		if json.Unmarshal(c.Body, &o) != nil || o.Status == "" || o.Status == "draft" {
			return nil
		}
		d := map[string]any{"order_id": c.ID, "customer_id": o.CustomerID, "status": o.Status, "status_changed_at": o.StatusChangedAt}
		if o.ERPNumber != "" {
			d["erp_number"] = o.ERPNumber
		}
		return []event{{typ: EventOrderStatus, collection: c.Collection, docID: c.ID, state: o.Status + "|" + o.StatusChangedAt,
			at: stamp(o.StatusChangedAt), data: d}}
	case "visit_logs":
		var v visitLogDoc
		if json.Unmarshal(c.Body, &v) != nil || v.Review == nil || v.Review.Status != "flagged" {
			return nil
		}
		return []event{{typ: EventVisitFlagged, collection: c.Collection, docID: c.ID, state: "flagged|" + v.Review.At,
			at: stamp(v.Review.At), data: map[string]any{"visit_log_id": c.ID, "customer_id": v.CustomerID,
				"reviewed_by": v.Review.By, "reviewed_at": v.Review.At, "comment": v.Review.Comment}}}
	}
	return nil
}

// matches reports whether sub wants e.
// registered is the device.registered event of a registration: the ids
// and the platform, never the push token.
func registered(r Registration) event {
	return event{typ: EventDeviceRegistered, collection: "devices", docID: r.User + "/" + r.Device,
		state: strconv.FormatInt(r.At.UnixMilli(), 10), at: r.At,
		data: map[string]any{"user_id": r.User, "device_id": r.Device, "platform": r.Platform}}
}

func (s *Subscription) matches(e event) bool {
	if s.Disabled || !slices.Contains(s.Events, e.typ) {
		return false
	}
	if e.collection == "follow_ups" {
		if len(s.Roles) > 0 && !slices.Contains(s.Roles, e.role) {
			return false
		}
		if len(s.Activities) > 0 && !slices.Contains(s.Activities, e.activity) {
			return false
		}
	}
	return true
}

// body is the JSON a delivery sends: {"type", "timestamp", "data"}, the
// envelope the Standard Webhooks specification suggests.
func body(e event, now time.Time) ([]byte, error) {
	ts := e.at
	if ts.IsZero() {
		ts = now
	}
	return json.Marshal(struct {
		Type      string         `json:"type"`
		Timestamp time.Time      `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}{e.typ, ts.UTC(), e.data})
}

func stamp(v string) time.Time {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}
	}
	return t
}
