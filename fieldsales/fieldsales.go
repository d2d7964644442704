// Package fieldsales is what fieldsync's documents mean: the collections of
// protocol version 1 and their fields, who reads them (scope keys), who may
// write what (the write rules), the fields the server derives (visits), and
// the index keys the workflow and the KPI service read. It implements
// engine.Rules; the engine applies it to every write and knows nothing of
// customers, orders, visits or follow-ups. Adding a field-sales rule touches
// this package and its tests.
package fieldsales

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/fieldsync/fieldsync/sync/engine"
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
	// CollAttachments is the engine's (files of any document).
	CollAttachments = engine.CollAttachments
)

// Fields named by more than one rule or package.
const (
	FieldCustomer        = "customer_id"
	FieldAssignedReps    = "assigned_reps"
	FieldStatus          = "status"
	FieldResponsibleRole = "responsible_role"
	FieldAccountableRole = "accountable_role"
	FieldInformedRoles   = "informed_roles"
	FieldAssignedTo      = "assigned_to"
	FieldOrder           = "order_id"
	FieldRep             = "rep_id"
	FieldEscalatedAt     = "escalated_at"
	FieldDueAt           = "due_at"
	FieldClosedAt        = "closed_at"
	FieldDependsOn       = "depends_on"
	FieldSubmittedAt     = "submitted_at"
)

// systemUser is the writer recorded for the rules' own writes.
const systemUser = "fieldsync"

// Rules implements engine.Rules for field sales.
type Rules struct {
	visits VisitRules
}

var _ engine.Rules = (*Rules)(nil)

// New returns the rules; zero fields of visits take DefaultVisitRules.
func New(visits VisitRules) *Rules {
	return &Rules{visits: visits.withDefaults()}
}

// Parent: a document hangs off the customer it names; customers and
// reference data hang off nothing.
func (r *Rules) Parent(collection string, body map[string]any) (engine.DocRef, bool) {
	c := customerOf(collection, body)
	return engine.DocRef{Collection: CollCustomers, ID: c}, c != ""
}

// ChildKey is a customer's own key, which everything attached to it carries.
func (r *Rules) ChildKey(parent engine.DocRef) string { return CustomerScope(parent.ID) }

// Inherited are the keys of a customer's reps: they read what hangs off it.
func (r *Rules) Inherited(parent *engine.Document) []string {
	if parent == nil || parent.Deleted || parent.Collection != CollCustomers {
		return nil
	}
	var out []string
	for _, k := range parent.Scopes {
		if isUserKey(k) {
			out = append(out, k)
		}
	}
	return out
}

// Recheck: writing a customer's assigned_reps re-checks its history.
func (r *Rules) Recheck(collection string, fields map[string]json.RawMessage) bool {
	_, ok := fields[FieldAssignedReps]
	return ok && collection == CollCustomers
}

// Check runs the write rules that need no stored state (writerules.go).
func (r *Rules) Check(actor engine.Actor, m *engine.Mutation, body, fields map[string]any) error {
	if m.Op == engine.OpCreate {
		return checkCreateStatic(actor, m.Collection, m.DocID, body)
	}
	return checkUpdateStatic(actor, m.Collection, sortedKeys(fields), fields)
}

// applyServerDefaults sets the server-owned fields of a document created by a
// device, reporting whether it changed anything.
func applyServerDefaults(collection string, body map[string]any, actor engine.Actor) bool {
	switch collection {
	case CollFollowUps:
		// A follow-up raised by a rep enters the queue open; routing to the
		// responsible role comes with the responsibility matrix.
		if _, ok := body[FieldStatus]; !ok {
			body[FieldStatus] = "open"
			return true
		}
	case CollCustomers:
		// A customer a rep captures in the field is theirs until an admin or
		// manager says otherwise; without this the rep could not see it.
		if _, ok := body[FieldAssignedReps]; !ok && actor.HasRole(RoleRep) {
			body[FieldAssignedReps] = []any{actor.User}
			return true
		}
	}
	return false
}

// sortedKeys returns m's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Begin reads what a push's decisions need (batch.go).
func (r *Rules) Begin(ctx context.Context, rd engine.Reader, b engine.BatchInfo) (engine.Batch, error) {
	return r.begin(ctx, rd, b)
}
