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
	NotifyOnDone    []string        `json:"notify_on_done"`
	NotifyOnBlocked []string        `json:"notify_on_blocked"`
	History         []FollowUpEvent `json:"history"`
}

// FollowUpEvent is one entry of a follow-up's history: what happened, when,
// and who did it (By is empty when the server did).
type FollowUpEvent struct {
	At     string `json:"at"`
	Action string `json:"action"`
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// MaxFollowUpHistory is how many entries a follow-up's history keeps
// (follow_ups.json's maxItems): the first and the latest ones.
const MaxFollowUpHistory = 50

// Follow-up statuses (the workflow's state machine, docs/workflows.md).
const (
	FollowUpOpen       = "open"
	FollowUpClaimed    = "claimed"
	FollowUpInProgress = "in_progress"
	FollowUpBlocked    = "blocked"
	FollowUpDone       = "done"
	FollowUpCancelled  = "cancelled"
)

// VisitLog is a visit log (collection visit_logs); the server derives
// CheckInAt and what follows it (visits.go).
type VisitLog struct {
	CustomerID   string    `json:"customer_id"`
	VisitPlanID  string    `json:"visit_plan_id"`
	CheckIn      *GPSEvent `json:"check_in"`
	CheckOut     *GPSEvent `json:"check_out"`
	Outcome      string    `json:"outcome"`
	Notes        string    `json:"notes"`
	CheckInAt    string    `json:"check_in_at"`
	CheckOutAt   string    `json:"check_out_at"`
	DurationS    *int64    `json:"duration_s"`
	ClockOffsetS int64     `json:"clock_offset_s"`
	Verification struct {
		Status    string `json:"status"`
		DistanceM *int64 `json:"distance_m"`
	} `json:"verification"`
	Review *VisitReview `json:"review"`
}

// GPSEvent is a check-in or check-out as the device recorded it.
type GPSEvent struct {
	At        string   `json:"at"`
	Lat       *float64 `json:"lat"`
	Lng       *float64 `json:"lng"`
	AccuracyM *float64 `json:"accuracy_m"`
}

// VisitReview is a manager's review of a visit.
type VisitReview struct {
	Status  string `json:"status"` // approved or flagged
	Comment string `json:"comment"`
	By      string `json:"by"`
	At      string `json:"at"`
}

// VisitPlan is a planned visit (collection visit_plans).
type VisitPlan struct {
	CustomerID   string `json:"customer_id"`
	RepID        string `json:"rep_id"` // whose visit; the owner when absent
	Status       string `json:"status"`
	AssignedBy   string `json:"assigned_by"`
	PlannedStart string `json:"planned_start"`
	PlannedEnd   string `json:"planned_end"`
	Purpose      string `json:"purpose"`
}

// Order is an order (collection orders). Money is decimal strings
// (docs/protocol.md, "Money").
type Order struct {
	CustomerID      string `json:"customer_id"`
	Status          string `json:"status"`
	StatusChangedAt string `json:"status_changed_at"`
	StatusReason    string `json:"status_reason"`
	ERPNumber       string `json:"erp_number"`
	SubmittedAt     string `json:"submitted_at"`
	Currency        string `json:"currency"`
	Total           string `json:"total"`
}

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
