// Package workflow is fieldsync's field-sales domain after order capture:
// the responsibility matrix (which back-office role does what, by when,
// after what), the routing of submitted orders and rep-raised follow-ups,
// the follow-up queues' state machine, and the escalation of overdue
// follow-ups. docs/workflows.md is its reference.
//
// It writes only documents, through the sync engine's trusted writes, so
// every change syncs to the phones and drives notifications like any other.
// It imports the sync engine and identity (both free of I/O) and must not
// import HTTP, database or Firebase packages: the matrix store is the
// MatrixStore interface declared here.
package workflow

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Matrix is the responsibility matrix of one organisation, as its JSON file
// says (docs/workflows.md).
type Matrix struct {
	// Roles are roles the matrix names beyond the organisation's own (the
	// accountable managers of the default matrix); validation accepts them,
	// and an admin adds them to the organisation before users hold them.
	Roles      []string   `json:"roles,omitempty"`
	Policy     Policy     `json:"policy"`
	Activities []Activity `json:"activities"`

	byID map[string]*Activity
}

// Policy holds the order rules that are configuration, not code.
type Policy struct {
	// DiscountLimitPct is the largest effective discount (percent off the
	// price list) a rep may give without price approval.
	DiscountLimitPct float64 `json:"discount_limit_pct"`
	// DiscountLimits overrides it per user id.
	DiscountLimits map[string]float64 `json:"discount_limits,omitempty"`
}

// DiscountLimit returns the limit in force for a rep.
func (p Policy) DiscountLimit(user string) float64 {
	if l, ok := p.DiscountLimits[user]; ok {
		return l
	}
	return p.DiscountLimitPct
}

// Activity is one row of the matrix.
type Activity struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Trigger     Trigger  `json:"trigger"`
	Responsible string   `json:"responsible"`
	Accountable string   `json:"accountable"`
	Consulted   []string `json:"consulted,omitempty"`
	Informed    []string `json:"informed,omitempty"`
	// SLA is a Go duration ("4h", "90m"): due_at is creation + SLA.
	SLA             string   `json:"sla"`
	DependsOn       []string `json:"depends_on,omitempty"`
	NotifyOnDone    []string `json:"notify_on_done,omitempty"`
	NotifyOnBlocked []string `json:"notify_on_blocked,omitempty"`
	// Requires are the result fields completing it must carry (non-empty
	// strings), e.g. erp_number.
	Requires []string `json:"requires,omitempty"`
	// Attachments are result fields that must name a file attached to the
	// follow-up or its order (an attachment id, docs/attachments.md), e.g.
	// proof_of_delivery: a photo or a signed PDF, not a typed text. They
	// are required like Requires.
	Attachments []string `json:"attachments,omitempty"`
	// OnDone is what completing it does to the order; nil: nothing.
	OnDone *OrderMove `json:"on_done,omitempty"`

	sla time.Duration
}

// Due is the activity's SLA as a duration.
func (a *Activity) Due() time.Duration { return a.sla }

// Trigger says when a follow-up for the activity is created.
type Trigger struct {
	// On is order_status (the order reached Status; "submitted" means
	// accepted after validation), activity_done (the order's follow-up of
	// Activity was completed) or raised (created by hand, e.g. a rep's
	// delivery-status query over sync).
	On       string `json:"on"`
	Status   string `json:"status,omitempty"`
	Activity string `json:"activity,omitempty"`
}

// Trigger kinds.
const (
	OnOrderStatus  = "order_status"
	OnActivityDone = "activity_done"
	OnRaised       = "raised"
)

// OrderMove moves the order when a follow-up is completed: to To, only
// while it is in one of From; Copy names result fields copied onto the
// order (erp_number, invoice_number).
type OrderMove struct {
	From []string `json:"from"`
	To   string   `json:"to"`
	Copy []string `json:"copy,omitempty"`
}

// Activity returns the activity with id, or nil.
func (m *Matrix) Activity(id string) *Activity { return m.byID[id] }

// Order statuses (../shared/product.md).
const (
	StatusDraft         = "draft"
	StatusSubmitted     = "submitted"
	StatusCreditHold    = "credit_hold"
	StatusPriceApproval = "price_approval"
	StatusConfirmed     = "confirmed"
	StatusPartDelivered = "part_delivered"
	StatusDelivered     = "delivered"
	StatusInvoiced      = "invoiced"
	StatusClosed        = "closed"
	StatusRejected      = "rejected"
	StatusCancelled     = "cancelled"
)

var orderStatuses = []string{StatusDraft, StatusSubmitted, StatusCreditHold, StatusPriceApproval, StatusConfirmed,
	StatusPartDelivered, StatusDelivered, StatusInvoiced, StatusClosed, StatusRejected, StatusCancelled}

// copyable are the order fields a completed follow-up may fill from its
// result: server-only fields of orders.json that hold a reference.
var copyable = []string{"erp_number", "invoice_number"}

// Bounds that keep every follow-up the matrix makes within its schema
// (follow_ups.json) and every routing within one server write.
const (
	maxActivities = 100
	maxNameLen    = 200
	maxRoleList   = 32
	maxDependsOn  = 64
)

// CodeInvalidMatrix answers a matrix that does not validate; the pointer
// names the offending value in the matrix document.
const CodeInvalidMatrix = "invalid_matrix"

var (
	activityIDPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)
	roleNamePattern   = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
)

//go:embed default_matrix.json
var defaultMatrix []byte

// DefaultMatrix returns the JSON of the matrix shipped with fieldsync.
func DefaultMatrix() []byte { return bytes.Clone(defaultMatrix) }

func invalid(pointer, format string, args ...any) *engine.Error {
	return engine.Errorf(engine.KindInvalid, CodeInvalidMatrix, pointer, format, args...)
}

// Parse decodes and validates a matrix. known says which roles exist in the
// organisation (the matrix's own Roles are added to it). Errors carry a
// JSON pointer into raw.
func Parse(raw []byte, known func(role string) bool) (*Matrix, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var m Matrix
	if err := dec.Decode(&m); err != nil {
		return nil, invalid("", "the matrix is not valid JSON of the documented shape: %v", err)
	}
	if dec.More() {
		return nil, invalid("", "trailing data after the matrix")
	}
	if err := m.validate(known); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Matrix) validate(known func(string) bool) error {
	for i, r := range m.Roles {
		if !roleNamePattern.MatchString(r) {
			return invalid(fmt.Sprintf("/roles/%d", i), "a role name is 1 to 64 characters of a-z, 0-9 and _")
		}
	}
	isRole := func(r string) bool { return known(r) || slices.Contains(m.Roles, r) }
	if err := m.Policy.validate(); err != nil {
		return err
	}
	if len(m.Activities) == 0 || len(m.Activities) > maxActivities {
		return invalid("/activities", "a matrix has 1 to %d activities", maxActivities)
	}
	m.byID = map[string]*Activity{}
	for i := range m.Activities {
		a := &m.Activities[i]
		at := fmt.Sprintf("/activities/%d", i)
		if !activityIDPattern.MatchString(a.ID) {
			return invalid(at+"/id", "an activity id is 1 to 48 characters of a-z, 0-9 and _, starting with a letter")
		}
		if _, dup := m.byID[a.ID]; dup {
			return invalid(at+"/id", "activity %q is defined twice", a.ID)
		}
		m.byID[a.ID] = a
	}
	for i := range m.Activities {
		if err := m.validateActivity(i, isRole); err != nil {
			return err
		}
	}
	return m.checkCycles()
}

func (p Policy) validate() error {
	if p.DiscountLimitPct < 0 || p.DiscountLimitPct > 100 {
		return invalid("/policy/discount_limit_pct", "discount_limit_pct must be 0 to 100")
	}
	for u, l := range p.DiscountLimits {
		if l < 0 || l > 100 {
			return invalid("/policy/discount_limits/"+u, "a discount limit must be 0 to 100")
		}
	}
	return nil
}

func (m *Matrix) validateActivity(i int, isRole func(string) bool) error {
	a := &m.Activities[i]
	at := fmt.Sprintf("/activities/%d", i)
	if len(a.Name) > maxNameLen {
		return invalid(at+"/name", "a name is at most %d bytes", maxNameLen)
	}
	if len(a.DependsOn) > maxDependsOn {
		return invalid(at+"/depends_on", "at most %d dependencies", maxDependsOn)
	}
	switch a.Trigger.On {
	case OnOrderStatus:
		if !slices.Contains(orderStatuses, a.Trigger.Status) || a.Trigger.Status == StatusDraft {
			return invalid(at+"/trigger/status", "trigger status must be an order status after draft, got %q", a.Trigger.Status)
		}
	case OnActivityDone:
		if m.byID[a.Trigger.Activity] == nil {
			return invalid(at+"/trigger/activity", "unknown activity %q", a.Trigger.Activity)
		}
	case OnRaised:
	default:
		return invalid(at+"/trigger/on", "trigger on must be %s, %s or %s", OnOrderStatus, OnActivityDone, OnRaised)
	}
	// After order capture the rep is never responsible (product.md): a
	// follow-up a rep raises must land in a back-office queue.
	if a.Responsible == "" {
		return invalid(at+"/responsible", "responsible is required")
	}
	if a.Responsible == fieldsales.RoleRep {
		return invalid(at+"/responsible", "the rep is never responsible after order capture: name a back-office role")
	}
	if !isRole(a.Responsible) {
		return invalid(at+"/responsible", "unknown role %q", a.Responsible)
	}
	if a.Accountable == "" {
		return invalid(at+"/accountable", "accountable is required")
	}
	if !isRole(a.Accountable) {
		return invalid(at+"/accountable", "unknown role %q", a.Accountable)
	}
	for _, l := range []struct {
		name  string
		roles []string
	}{{"consulted", a.Consulted}, {"informed", a.Informed}, {"notify_on_done", a.NotifyOnDone}, {"notify_on_blocked", a.NotifyOnBlocked}} {
		if len(l.roles) > maxRoleList {
			return invalid(at+"/"+l.name, "at most %d roles", maxRoleList)
		}
		for j, r := range l.roles {
			if !isRole(r) {
				return invalid(fmt.Sprintf("%s/%s/%d", at, l.name, j), "unknown role %q", r)
			}
		}
	}
	if a.SLA == "" {
		return invalid(at+"/sla", "sla is required: a duration such as \"4h\"")
	}
	d, err := time.ParseDuration(a.SLA)
	if err != nil || d <= 0 {
		return invalid(at+"/sla", "sla must be a positive duration such as \"4h\" or \"90m\", got %q", a.SLA)
	}
	a.sla = d
	for j, dep := range a.DependsOn {
		if m.byID[dep] == nil {
			return invalid(fmt.Sprintf("%s/depends_on/%d", at, j), "unknown activity %q", dep)
		}
	}
	for j, f := range a.Requires {
		if !roleNamePattern.MatchString(f) {
			return invalid(fmt.Sprintf("%s/requires/%d", at, j), "a result field name is 1 to 64 characters of a-z, 0-9 and _")
		}
	}
	for j, f := range a.Attachments {
		if !roleNamePattern.MatchString(f) {
			return invalid(fmt.Sprintf("%s/attachments/%d", at, j), "a result field name is 1 to 64 characters of a-z, 0-9 and _")
		}
	}
	if mv := a.OnDone; mv != nil {
		if !slices.Contains(orderStatuses, mv.To) || mv.To == StatusDraft {
			return invalid(at+"/on_done/to", "on_done.to must be an order status after draft, got %q", mv.To)
		}
		if len(mv.From) == 0 {
			return invalid(at+"/on_done/from", "on_done.from lists the order statuses the move starts from")
		}
		for j, f := range mv.From {
			if !slices.Contains(orderStatuses, f) {
				return invalid(fmt.Sprintf("%s/on_done/from/%d", at, j), "unknown order status %q", f)
			}
		}
		for j, f := range mv.Copy {
			if !slices.Contains(copyable, f) {
				return invalid(fmt.Sprintf("%s/on_done/copy/%d", at, j), "only %v can be copied onto the order", copyable)
			}
		}
	}
	return nil
}

// checkCycles rejects a dependency cycle, pointing at the depends_on entry
// that closes it.
func (m *Matrix) checkCycles() error {
	const (
		unseen = iota
		active
		finished
	)
	state := map[string]int{}
	index := map[string]int{}
	for i, a := range m.Activities {
		index[a.ID] = i
	}
	var visit func(id string) error
	visit = func(id string) error {
		state[id] = active
		a := m.byID[id]
		for j, dep := range a.DependsOn {
			switch state[dep] {
			case active:
				return invalid(fmt.Sprintf("/activities/%d/depends_on/%d", index[id], j),
					"dependency cycle: %s depends on %s, which itself depends on %s", id, dep, id)
			case unseen:
				if err := visit(dep); err != nil {
					return err
				}
			}
		}
		state[id] = finished
		return nil
	}
	for _, a := range m.Activities {
		if state[a.ID] == unseen {
			if err := visit(a.ID); err != nil {
				return err
			}
		}
	}
	return nil
}
