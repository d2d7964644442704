package fieldsales

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// The write rules of protocol version 1, in one place: for every collection,
// which callers may create, update and delete its documents, in which
// states, and who may write each field. docs/access.md prints this table
// (TestAccessDocMatchesWriteRules keeps it true) and the system test
// TestWriteRulesEnumerated tries every cell over HTTP.
//
// The rules bind devices, i.e. pushes. The server's own writes (the
// workflow routing an order, an import, the admin API) are trusted and do
// not go through them. Reading comes first: a caller can write only what its
// read set holds (docs/access.md, "Scope keys"); the rules below narrow that.
//
// Callers are classified by role: rep, manager, admin, and back_office for
// holders of any other role (the matrix's order desk, pricing, ...). Back
// office roles work the follow-ups routed to them through /v1/followups; by
// sync they only raise their own.
//
// Relational rules that need more than one document live beside the code
// that reads the other documents and are listed in Relations.

// Caller classes of the write rules.
const (
	ClassRep        = "rep"
	ClassManager    = "manager"
	ClassAdmin      = "admin"
	ClassBackOffice = "back_office"
)

// Classes lists every caller class, in table order.
var Classes = []string{ClassRep, ClassManager, ClassAdmin, ClassBackOffice}

// classesOf returns the classes the actor belongs to.
func classesOf(a engine.Actor) []string {
	var out []string
	for _, r := range a.Roles {
		c := r
		if r != RoleRep && r != RoleManager && r != RoleAdmin {
			c = ClassBackOffice
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// Grant lets a class of caller do an operation.
type Grant struct {
	Class string
	// Own limits the grant to documents the caller created.
	Own bool
	// States limits the grant to documents in one of these states (an
	// update or delete; nil: any state).
	States []string
	// Fields limits an update grant to these fields (nil: any field the
	// field rules let the caller write).
	Fields []string
}

// FieldRules says who may write one top-level field.
type FieldRules struct {
	Server bool     // only the server writes it
	Fixed  bool     // a device sets it on create only; it never changes
	By     []string // only these classes may write it (nil: whoever may write the document)
	Values []string // the only values a device may write
	// Moves are the device's moves of a state field, from each state (a
	// state absent from the map allows none).
	Moves map[string][]string
	// States are the document states in which a device may change the
	// field (nil: any).
	States []string
}

// CollectionRules are the write rules of one collection.
type CollectionRules struct {
	// State names the document state the rules depend on: a field, or a
	// state derived from the body (visit logs: in_progress, checked_out).
	State  string
	States []string // every state, for the table and its test
	// IDPrefix is the id space the server derives ids in (follow-ups of an
	// order's routing: fu-<order>-<activity>): a device may not create a
	// document there, so it cannot take an id the workflow will trust.
	IDPrefix string
	Create   []Grant
	Update   []Grant
	Delete   []Grant
	Fields   map[string]FieldRules
	// ServerRest makes every field absent from Fields the server's.
	ServerRest bool

	name string
}

func init() {
	for name, r := range WriteRules {
		r.name = name
	}
}

func anyOf(classes ...string) []Grant {
	g := make([]Grant, len(classes))
	for i, c := range classes {
		g[i] = Grant{Class: c}
	}
	return g
}

var (
	draftOnly   = []string{"", "draft"}
	open        = []string{"open"}
	orderStates = []string{"draft", "submitted", "credit_hold", "price_approval", "confirmed", "part_delivered", "delivered",
		"invoiced", "closed", "rejected", "cancelled"}
	adminOnly  = anyOf(ClassAdmin)
	siteFields = []string{ClassManager, ClassAdmin}
)

// WriteRules is the table. Collections absent from it accept no device
// writes at all.
var WriteRules = map[string]*CollectionRules{
	CollCustomers: {
		Create: anyOf(ClassRep, ClassManager, ClassAdmin),
		Update: anyOf(ClassRep, ClassManager, ClassAdmin),
		// A rep may remove a customer they captured, not one the back
		// office or an admin set up.
		Delete: []Grant{{Class: ClassRep, Own: true}, {Class: ClassManager}, {Class: ClassAdmin}},
		Fields: map[string]FieldRules{
			// Reference data the visit verification trusts: a rep who could
			// move the site could verify any check-in.
			"location":      {By: siteFields},
			"assigned_reps": {By: siteFields},
			"price_list_id": {By: siteFields},
			"credit_status": {Server: true},
		},
	},
	CollVisitPlans: {
		State:  "status",
		States: []string{"planned", "done", "cancelled", "missed"},
		Create: anyOf(ClassRep, ClassManager, ClassAdmin),
		// A plan is done once a visit fulfils it: it is then a record.
		Update: []Grant{{Class: ClassRep, States: []string{"", "planned"}}, {Class: ClassManager, States: []string{"", "planned"}}, {Class: ClassAdmin}},
		Delete: []Grant{{Class: ClassRep, Own: true, States: []string{"", "planned"}}, {Class: ClassManager, States: []string{"", "planned"}}, {Class: ClassAdmin}},
		Fields: map[string]FieldRules{
			"customer_id": {Fixed: true},
			"rep_id":      {Fixed: true},
			"assigned_by": {Server: true},
			"status": {Values: []string{"planned", "cancelled"}, Moves: map[string][]string{
				"":        {"planned", "cancelled"},
				"planned": {"planned", "cancelled"},
			}},
		},
	},
	CollVisitLogs: {
		State:  stateVisit,
		States: []string{visitInProgress, visitCheckedOut},
		Create: anyOf(ClassRep, ClassManager, ClassAdmin),
		// A visit is its rep's record; their manager reviews it.
		Update: []Grant{{Class: ClassRep, Own: true}, {Class: ClassManager, Own: true}, {Class: ClassManager, Fields: []string{"review"}}, {Class: ClassAdmin}},
		// Once checked out a visit counts as face time: it stays.
		Delete: []Grant{{Class: ClassRep, Own: true, States: []string{visitInProgress}}, {Class: ClassManager, Own: true, States: []string{visitInProgress}}, {Class: ClassAdmin}},
		Fields: map[string]FieldRules{
			"customer_id":   {Fixed: true},
			"visit_plan_id": {Fixed: true},
			// A late GPS fix may correct check_in; it is verified again.
			"check_out":                {States: []string{visitInProgress}},
			"review":                   {By: []string{ClassManager, ClassAdmin}},
			"check_in_at":              {Server: true},
			"check_out_at":             {Server: true},
			"duration_s":               {Server: true},
			"verification":             {Server: true},
			"clock_offset_s":           {Server: true},
			"check_out_clock_offset_s": {Server: true},
		},
	},
	CollOrders: {
		State:  "status",
		States: orderStates,
		Create: anyOf(ClassRep, ClassManager, ClassAdmin),
		Update: anyOf(ClassRep, ClassManager, ClassAdmin),
		// Past draft the back office works from the order: it stays.
		Delete: []Grant{{Class: ClassRep, Own: true, States: draftOnly}, {Class: ClassManager, States: draftOnly}, {Class: ClassAdmin}},
		Fields: map[string]FieldRules{
			"customer_id":        {Fixed: true},
			"lines":              {States: draftOnly},
			"currency":           {States: draftOnly},
			"requested_delivery": {States: draftOnly},
			"notes":              {States: draftOnly},
			"status": {Values: []string{"draft", "submitted", "cancelled"}, Moves: map[string][]string{
				"":          {"draft", "submitted", "cancelled"},
				"draft":     {"draft", "submitted", "cancelled"},
				"submitted": {"submitted", "cancelled"},
			}},
			"erp_number": {Server: true}, "total": {Server: true}, "line_totals": {Server: true}, "status_reason": {Server: true},
			"submitted_at": {Server: true}, "confirmed_at": {Server: true}, "rejection": {Server: true},
			"invoice_number": {Server: true}, "delivered_at": {Server: true}, "invoiced_at": {Server: true},
			"status_changed_at": {Server: true}, "matrix_version": {Server: true}, FieldSettledStatus: {Server: true},
		},
	},
	CollCustomerNotes: {
		Create: anyOf(ClassRep, ClassManager, ClassAdmin),
		Update: anyOf(ClassRep, ClassManager, ClassAdmin),
		Delete: []Grant{{Class: ClassRep, Own: true}, {Class: ClassManager, Own: true}, {Class: ClassAdmin}},
		Fields: map[string]FieldRules{
			"customer_id":  {Fixed: true},
			"visit_log_id": {Fixed: true},
		},
	},
	CollFollowUps: {
		State:    "status",
		States:   []string{"open", "claimed", "in_progress", "blocked", "done", "cancelled"},
		IDPrefix: "fu-",
		// A rep (or a back-office user) raises a query, which the matrix
		// routes, and may reword or withdraw it until someone starts on
		// it. Routed work is the back office's, through /v1/followups.
		Create: anyOf(ClassRep, ClassManager, ClassAdmin, ClassBackOffice),
		Update: []Grant{{Class: ClassRep, Own: true, States: open}, {Class: ClassManager, Own: true, States: open},
			{Class: ClassBackOffice, Own: true, States: open}, {Class: ClassAdmin, States: open}},
		Delete: []Grant{{Class: ClassRep, Own: true, States: open}, {Class: ClassManager, Own: true, States: open},
			{Class: ClassBackOffice, Own: true, States: open}, {Class: ClassAdmin}},
		Fields: map[string]FieldRules{
			"customer_id": {Fixed: true},
			"order_id":    {Fixed: true},
			"activity":    {Fixed: true},
			"description": {},
		},
		ServerRest: true, // routing, status, SLA: the workflow's
	},
	// Reference data: everyone reads it, only admins write it.
	CollProducts: {Create: adminOnly, Update: adminOnly, Delete: adminOnly,
		Fields: adminFields("sku", "name", "category", "unit", "list_price", "currency", "active")},
	CollPriceLists: {Create: adminOnly, Update: adminOnly, Delete: adminOnly,
		Fields: adminFields("name", "currency", "segment", "valid_from", "prices")},
}

func adminFields(names ...string) map[string]FieldRules {
	m := make(map[string]FieldRules, len(names))
	for _, n := range names {
		m[n] = FieldRules{By: []string{ClassAdmin}}
	}
	return m
}

// Relations lists the rules that relate a document to others; the engine
// checks them with the documents they need (scopes.go, visits.go, refs.go).
var Relations = []string{
	"An update or delete needs the document in the caller's read set (`forbidden`); a create attached to a customer needs the customer there (`customer_not_in_scope`).",
	"`assigned_reps` names active users of the organisation holding the role rep, each once (`unknown_rep`), over sync as through the admin API.",
	"A follow-up's `order_id`, a note's `visit_log_id` and a visit log's `visit_plan_id` name a document of the same customer that the writer reads (`invalid_reference`).",
	"A visit plan's `rep_id` is the writer, or a rep of a team the writer leads, or anyone for an admin (`cannot_assign`).",
	"A visit log's `review` is written by a manager who leads the visit's rep, or an admin, and never on the create (`field_not_writable`).",
	"A rep has at most one visit checked in and not checked out (`visit_in_progress`).",
}

// Codes of the write rules.
const (
	CodeReservedID       = "reserved_id"
	CodeInvalidReference = "invalid_reference"
)

// Visit log states, derived from the body.
const (
	stateVisit      = "(checked out?)"
	visitInProgress = "in_progress"
	visitCheckedOut = "checked_out"
)

// stateOf returns the document's state under the collection's rules.
func (r *CollectionRules) stateOf(body map[string]any) string {
	switch r.State {
	case "":
		return ""
	case stateVisit:
		if _, out := body["check_out"]; out {
			return visitCheckedOut
		}
		return visitInProgress
	}
	s, _ := body[r.State].(string)
	return s
}

// grantFor returns the first grant of gs that lets the actor act on a
// document owned by owner in state, or why none does.
func grantFor(gs []Grant, classes []string, own bool, state string) (*Grant, string) {
	why := "role"
	for i := range gs {
		g := &gs[i]
		if !slices.Contains(classes, g.Class) {
			continue
		}
		if g.Own && !own {
			why = "own"
			continue
		}
		if g.States != nil && !slices.Contains(g.States, state) {
			if why != "own" {
				why = "state"
			}
			continue
		}
		return g, ""
	}
	return nil, why
}

func opRefusal(coll string, op engine.Op, why, state string) error {
	thing := strings.TrimSuffix(coll, "s")
	switch why {
	case "own":
		return engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "/id", "only its author (or an admin) may %s this %s", op, thing)
	case "state":
		return engine.Errorf(engine.KindForbidden, engine.CodeDocumentLocked, "/id", "the %s is %s: a device may no longer %s it", thing, stateName(state), op)
	}
	return engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "/id", "your role may not %s %s", op, coll)
}

func stateName(s string) string {
	if s == "" {
		return "without a state"
	}
	return s
}

// checkCreateStatic checks what a device's create may do before any stored
// state is read: the operation, the id space and every field set.
func checkCreateStatic(actor engine.Actor, coll, id string, body map[string]any) error {
	r := WriteRules[coll]
	if r == nil {
		return opRefusal(coll, engine.OpCreate, "role", "")
	}
	classes := classesOf(actor)
	if g, why := grantFor(r.Create, classes, true, ""); g == nil {
		return opRefusal(coll, engine.OpCreate, why, "")
	}
	if r.IDPrefix != "" && strings.HasPrefix(id, r.IDPrefix) {
		return engine.Errorf(engine.KindForbidden, CodeReservedID, "/id", "ids starting with %q are the server's in %s", r.IDPrefix, coll)
	}
	for _, k := range sortedKeys(body) {
		if err := r.checkField(classes, nil, engine.OpCreate, "/doc/", k, body[k]); err != nil {
			return err
		}
	}
	return nil
}

// checkUpdateStatic checks the fields of a device's update that need no
// stored state.
func checkUpdateStatic(actor engine.Actor, coll string, keys []string, fields map[string]any) error {
	r := WriteRules[coll]
	if r == nil {
		return opRefusal(coll, engine.OpUpdate, "role", "")
	}
	classes := classesOf(actor)
	for _, k := range keys {
		if err := r.checkField(classes, nil, engine.OpUpdate, "/fields/", k, fields[k]); err != nil {
			return err
		}
	}
	return nil
}

// checkField checks one field a device writes; cur is the stored body of an
// update (nil before it is read, when only the static rules are checked).
func (r *CollectionRules) checkField(classes []string, cur map[string]any, op engine.Op, prefix, k string, v any) error {
	f, listed := r.Fields[k]
	if !listed && r.ServerRest {
		f.Server = true
	}
	ptr := prefix + escapePointer(k)
	switch {
	case f.Server:
		return engine.Errorf(engine.KindForbidden, engine.CodeServerField, ptr, "%s is set by the server only", k)
	case f.Fixed && op == engine.OpUpdate:
		return engine.Errorf(engine.KindForbidden, engine.CodeImmutableField, ptr, "%s is fixed when the document is created", k)
	case f.By != nil && !slices.ContainsFunc(classes, func(c string) bool { return slices.Contains(f.By, c) }):
		return engine.Errorf(engine.KindForbidden, engine.CodeFieldNotWritable, ptr, "%s may be written only by %s", k, strings.Join(f.By, ", "))
	}
	if f.Values != nil {
		if s, _ := v.(string); !slices.Contains(f.Values, s) {
			return engine.Errorf(engine.KindForbidden, engine.CodeServerField, ptr, "a device may set %s only to %s; other values are set by the server",
				k, strings.Join(f.Values, ", "))
		}
	}
	if cur == nil {
		return nil
	}
	state := r.stateOf(cur)
	if f.States != nil && !slices.Contains(f.States, state) {
		return engine.Errorf(engine.KindForbidden, engine.CodeDocumentLocked, ptr, "the %s is %s: a device may no longer change %s",
			strings.TrimSuffix(r.name, "s"), stateName(state), k)
	}
	if f.Moves != nil {
		from, _ := cur[k].(string)
		to, _ := v.(string)
		if !slices.Contains(f.Moves[from], to) {
			return engine.Errorf(engine.KindForbidden, engine.CodeInvalidTransition, ptr, "a device may not move %s from %q to %q", k, from, to)
		}
	}
	return nil
}

// checkUpdate checks a device's update against the stored body (before the
// update): a grant must cover the caller, the owner, the state and every
// field written; then each field kept from the device (applied) must be
// changeable in that state.
func checkUpdate(actor engine.Actor, cur *engine.Document, body map[string]any, written, applied []string, fields map[string]any) error {
	r := WriteRules[cur.Collection]
	if r == nil {
		return opRefusal(cur.Collection, engine.OpUpdate, "role", "")
	}
	classes := classesOf(actor)
	state := r.stateOf(body)
	why, granted := "role", false
	for _, g := range r.Update {
		switch {
		case !slices.Contains(classes, g.Class):
		case g.Own && cur.Owner != actor.User:
			why = "own"
		case g.States != nil && !slices.Contains(g.States, state):
			why = "state"
		case g.Fields != nil && slices.ContainsFunc(written, func(k string) bool { return !slices.Contains(g.Fields, k) }):
			why = "fields:" + strings.Join(g.Fields, ", ")
		default:
			granted = true
		}
		if granted {
			break
		}
	}
	if !granted {
		if f, cut := strings.CutPrefix(why, "fields:"); cut {
			return engine.Errorf(engine.KindForbidden, engine.CodeFieldNotWritable, "/fields", "on another's %s your role may write only %s",
				strings.TrimSuffix(cur.Collection, "s"), f)
		}
		return opRefusal(cur.Collection, engine.OpUpdate, why, state)
	}
	for _, k := range applied {
		if err := r.checkField(classes, body, engine.OpUpdate, "/fields/", k, fields[k]); err != nil {
			return err
		}
	}
	return nil
}

// checkDelete checks a device's delete against the stored document.
func checkDelete(actor engine.Actor, cur *engine.Document, body map[string]any) error {
	r := WriteRules[cur.Collection]
	if r == nil {
		return opRefusal(cur.Collection, engine.OpDelete, "role", "")
	}
	state := r.stateOf(body)
	if g, why := grantFor(r.Delete, classesOf(actor), cur.Owner == actor.User, state); g == nil {
		return opRefusal(cur.Collection, engine.OpDelete, why, state)
	}
	return nil
}

// String renders a grant for the table in docs/access.md.
func (g Grant) String() string {
	s := g.Class
	var conds []string
	if g.Own {
		conds = append(conds, "own")
	}
	if g.States != nil {
		var st []string
		for _, x := range g.States {
			if x != "" {
				st = append(st, x)
			}
		}
		conds = append(conds, strings.Join(st, "/"))
	}
	if g.Fields != nil {
		conds = append(conds, "only "+strings.Join(g.Fields, ", "))
	}
	if len(conds) > 0 {
		s += fmt.Sprintf(" (%s)", strings.Join(conds, ", "))
	}
	return s
}

// escapePointer escapes one JSON pointer token (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
