package engine

import (
	"slices"
	"strings"
)

// Collection names of protocol version 1.
const (
	CollCustomers     = "customers"
	CollVisitPlans    = "visit_plans"
	CollVisitLogs     = "visit_logs"
	CollOrders        = "orders"
	CollCustomerNotes = "customer_notes"
	CollFollowUps     = "follow_ups"
	CollProducts      = "products"
	CollPriceLists    = "price_lists"
)

// deviceTransitions lists, per collection and state field, the moves a device
// may make from each state. The server's own moves (an order confirmed by
// the ERP) do not go through here. A state absent from the map accepts no
// device move at all: once the back office owns the order, the phone can
// only watch it.
var deviceTransitions = map[string]map[string]map[string][]string{
	CollOrders: {"status": {
		"":          {"draft", "submitted", "cancelled"},
		"draft":     {"draft", "submitted", "cancelled"},
		"submitted": {"submitted", "cancelled"},
	}},
	CollVisitPlans: {"status": {
		"":        {"planned", "cancelled"},
		"planned": {"planned", "cancelled"},
	}},
}

// lockedStates lists, per collection, the state field and the states in
// which a device may still change the document's other fields. Once an
// order is submitted the back office works from its lines and prices: a
// phone may then only move its status (cancel it while that is allowed).
var lockedStates = map[string]struct {
	field    string
	editable []string
}{
	CollOrders: {field: "status", editable: []string{"", "draft"}},
}

// checkLocked rejects a device's change of field in a document whose state
// no longer allows edits.
func checkLocked(collection string, cur map[string]any, field string) error {
	l, ok := lockedStates[collection]
	if !ok || field == l.field {
		return nil
	}
	state, _ := cur[l.field].(string)
	if slices.Contains(l.editable, state) {
		return nil
	}
	return Errorf(KindForbidden, CodeDocumentLocked, "/fields/"+escapePointer(field),
		"the %s is %s: a device may no longer change %s", strings.TrimSuffix(collection, "s"), state, field)
}

// checkTransition rejects a device's change of a state field that the state
// machine does not allow from the current value.
func checkTransition(collection, field string, from, to any) error {
	moves, ok := deviceTransitions[collection][field]
	if !ok {
		return nil
	}
	f, _ := from.(string)
	t, _ := to.(string)
	if !slices.Contains(moves[f], t) {
		return Errorf(KindForbidden, CodeInvalidTransition, "/fields/"+escapePointer(field),
			"a device may not move %s from %q to %q", field, f, t)
	}
	return nil
}

// applyServerDefaults sets the server-owned fields of a document created by a
// device, reporting whether it changed anything.
func applyServerDefaults(collection string, body map[string]any, actor Actor) bool {
	switch collection {
	case CollFollowUps:
		// A follow-up raised by a rep enters the queue open; routing to the
		// responsible role comes with the responsibility matrix.
		if _, ok := body["status"]; !ok {
			body["status"] = "open"
			return true
		}
	case CollCustomers:
		// A customer a rep captures in the field is theirs until an admin or
		// manager says otherwise; without this the rep could not see it.
		if _, ok := body["assigned_reps"]; !ok && actor.HasRole(RoleRep) {
			body["assigned_reps"] = []any{actor.User}
			return true
		}
	}
	return false
}
