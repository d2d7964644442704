package engine

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
