package fieldsales

import (
	"encoding/json"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Typed views of the documents, for the packages that read them (the
// workflow's pages, the console, KPIs, webhooks): one declaration of each
// shape, next to the rules that give the fields their meaning. A view reads
// what it knows and ignores the rest; schemas/ is the shape's full
// definition and validates every write.

// FollowUp is a follow-up (collection follow_ups).
type FollowUp struct {
	Title           string          `json:"title"`
	Description     string          `json:"description"`
	Note            string          `json:"note"`
	Activity        string          `json:"activity"`
	Status          string          `json:"status"`
	OrderID         string          `json:"order_id"`
	CustomerID      string          `json:"customer_id"`
	RepID           string          `json:"rep_id"`
	ResponsibleRole string          `json:"responsible_role"`
	AccountableRole string          `json:"accountable_role"`
	InformedRoles   []string        `json:"informed_roles"`
	AssignedTo      string          `json:"assigned_to"`
	DependsOn       []string        `json:"depends_on"`
	DueAt           string          `json:"due_at"`
	BlockedReason   string          `json:"blocked_reason"`
	BlockedAt       string          `json:"blocked_at"`
	EscalatedAt     string          `json:"escalated_at"`
	ClosedAt        string          `json:"closed_at"`
	ClosedBy        string          `json:"closed_by"`
	CreatedAt       string          `json:"created_at"`
	SettledAt       string          `json:"settled_at"`
	Result          json.RawMessage `json:"result"`
}

// Follow-up statuses (the workflow's state machine, docs/workflows.md).
const (
	FollowUpOpen       = "open"
	FollowUpClaimed    = "claimed"
	FollowUpInProgress = "in_progress"
	FollowUpBlocked    = "blocked"
	FollowUpDone       = "done"
	FollowUpCancelled  = "cancelled"
)

// View decodes a document's body into a view (V's zero value for a
// tombstone or a body it cannot read: stored bodies were validated on the
// way in).
func View[V any](d *engine.Document) V {
	var v V
	if d != nil && !d.Deleted {
		json.Unmarshal(d.Body, &v)
	}
	return v
}
