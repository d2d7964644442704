package accesstest

// An independent reading of the write-rule table (fieldsales.WriteRules) for
// the system tests: what the table says a caller may do, written from the
// table's documentation rather than from the engine's checker, so that a
// checker that forgets a rule, or applies it on one path only, disagrees.

import (
	"slices"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// wrClassOf maps a role to its class in the table.
func wrClassOf(role string) string {
	switch role {
	case fieldsales.RoleRep, fieldsales.RoleManager, fieldsales.RoleAdmin:
		return role
	}
	return fieldsales.ClassBackOffice
}

// wrState is the state the table reads from a stored body.
func wrState(coll string, body map[string]any) string {
	r := fieldsales.WriteRules[coll]
	switch {
	case r == nil || r.State == "":
		return ""
	case coll == fieldsales.CollVisitLogs:
		if _, out := body["check_out"]; out {
			return "checked_out"
		}
		return "in_progress"
	case coll == fieldsales.CollFollowUps && body["status"] == nil:
		return "open" // a raised follow-up enters the queue open
	}
	s, _ := body[r.State].(string)
	return s
}

// wrOp is the table's answer to an operation: "" when a grant allows it,
// else the code and pointer of the refusal. own says the caller created the
// document (always true for a create); fields are those an update writes.
func wrOp(class, coll string, op engine.Op, own bool, state string, fields []string) (code, pointer string) {
	r := fieldsales.WriteRules[coll]
	if r == nil {
		return engine.CodeForbidden, "/id"
	}
	grants := map[engine.Op][]fieldsales.Grant{engine.OpCreate: r.Create, engine.OpUpdate: r.Update, engine.OpDelete: r.Delete}[op]
	why := "role"
	for _, g := range grants {
		switch {
		case g.Class != class:
			continue
		case g.Own && !own:
			why = "own"
		case op != engine.OpCreate && g.States != nil && !slices.Contains(g.States, state):
			why = "state"
		case op == engine.OpUpdate && g.Fields != nil && slices.ContainsFunc(fields, func(f string) bool { return !slices.Contains(g.Fields, f) }):
			why = "fields"
		default:
			return "", ""
		}
	}
	switch why {
	case "state":
		return engine.CodeDocumentLocked, "/id"
	case "fields":
		return engine.CodeFieldNotWritable, "/fields"
	}
	return engine.CodeForbidden, "/id"
}

// wrField is the table's answer to a device writing field with value v in
// a document in state (an update), or on a create: "" when allowed.
// from is the field's current value (updates of a state field).
func wrField(class, coll string, op engine.Op, field string, v any, state string, from any) (code string) {
	if code := wrFieldStatic(class, coll, op, field, v); code != "" {
		return code
	}
	return wrFieldState(coll, op, field, v, state, from)
}

// wrFieldStatic is the part of the field rules that needs no stored
// document: the server's fields, fixed fields, the classes that may write
// the field and the values a device may write. The engine checks it before
// it reads anything, so it answers first.
func wrFieldStatic(class, coll string, op engine.Op, field string, v any) (code string) {
	r := fieldsales.WriteRules[coll]
	f, listed := r.Fields[field]
	switch {
	case f.Server || (!listed && r.ServerRest):
		return engine.CodeServerField
	case f.Fixed && op == engine.OpUpdate:
		return engine.CodeImmutableField
	case f.By != nil && !slices.Contains(f.By, class):
		return engine.CodeFieldNotWritable
	}
	if s, _ := v.(string); f.Values != nil && !slices.Contains(f.Values, s) {
		return engine.CodeServerField
	}
	return ""
}

// wrFieldState is the part of the field rules an update checks against
// the stored document: the states the field may change in, and the moves
// of a state field.
func wrFieldState(coll string, op engine.Op, field string, v any, state string, from any) (code string) {
	f := fieldsales.WriteRules[coll].Fields[field]
	if op != engine.OpUpdate {
		return ""
	}
	if f.States != nil && !slices.Contains(f.States, state) {
		return engine.CodeDocumentLocked
	}
	if f.Moves != nil {
		fs, _ := from.(string)
		if s, _ := v.(string); !slices.Contains(f.Moves[fs], s) {
			return engine.CodeInvalidTransition
		}
	}
	return ""
}
