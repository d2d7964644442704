package accesstest

// TestWriteRulesEnumerated tries every cell of the write-rule table
// (fieldsales.WriteRules, docs/access.md) over HTTP, rather than examples: for
// every collection, every field of its schema, every operation, every
// caller class (rep, manager, admin, back office), every document state of
// the schema's state enum, and documents of the caller's own and of
// another's, one mutation is pushed and its outcome compared with an
// independent reading of the table (writerules_oracle_test.go). The
// relational rules the table cannot express (fieldsales.Relations) are written
// out below where a cell meets them, each with the line it follows.
//
// Fixtures in states no device may reach (an invoiced order, a blocked
// follow-up) are written by the server's own trusted path, the engine's
// Upsert, as the user who is to own them, the way the workflow and the
// importer write. Afterwards the organisation's feed, read by an admin who
// sees everything, must hold exactly the applied cells: a refused write
// changed nothing.

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

func TestWriteRulesEnumerated(t *testing.T) {
	t.Parallel()
	testWriteRulesEnumerated(t, onSQLite, slices.Sorted(maps.Keys(fieldsales.WriteRules)), "")
}

// TestWriteRulesEnumeratedMongoDB runs the cells of the follow-ups (the
// collection with the most states, fields and classes) on MongoDB, the
// cells of each caller class in an organisation and a database of their
// own: FerretDB answers a query on anything but _id by reading the whole
// collection, so a run costs the square of the documents it holds, and one
// database holding every class's 3,000 cells and fixtures took 41 s alone
// and over 6 minutes under two go test ./... (docs/operations.md, "Tests").
// A cell's outcome does not depend on the other classes' cells: each acts
// on a fixture of its own.
func TestWriteRulesEnumeratedMongoDB(t *testing.T) {
	t.Parallel()
	for _, class := range fieldsales.Classes {
		t.Run(class, func(t *testing.T) {
			t.Parallel()
			testWriteRulesEnumerated(t, onMongoDB, []string{fieldsales.CollFollowUps}, class)
		})
	}
}

const wreOrg = "org-1"

// wreCaller is the user of one class and the owner of the documents of
// another that it acts on.
type wreCaller struct {
	class, user, role string
	other             engine.Actor
	tok               string
}

// wreCell is one mutation and what the table says of it.
type wreCell struct {
	name     string
	caller   *wreCaller
	key      string // collection/id
	mut      map[string]any
	code     string // "" when it must apply
	ptr      string
	version  int64 // applied: the resulting version
	deleted  bool
	got      engine.Outcome
	fixture  *wreFixture
	readable bool // the caller reads the document (updates and deletes)
}

type wreFixture struct {
	owner engine.Actor
	coll  string
	id    string
	doc   map[string]any
}

type wreRun struct {
	t        *testing.T
	w        *accWorld
	callers  []*wreCaller
	fixtures []*wreFixture
	cells    []*wreCell
	n        int
	enums    map[string]map[string][]string // collection -> field -> enum
	props    map[string][]string            // collection -> fields of its schema
	// refs are the documents cells name; a visit naming a plan fulfils
	// it, so they may change.
	refs map[string]bool
}

// testWriteRulesEnumerated runs the cells of colls on store, of the callers
// of class only when class is not "".
func testWriteRulesEnumerated(t *testing.T, store accStore, colls []string, class string) {
	w := newAccWorld(t, withoutWorkflows(store))
	r := &wreRun{t: t, w: w}
	r.schemas()
	w.AddTeam(wreOrg, "T")
	w.AddTeam(wreOrg, "U")
	for _, u := range []accUser{
		{ID: "adm", Roles: []string{"admin"}},
		{ID: "rep-a", Roles: []string{"rep"}, Teams: []string{"T"}},
		{ID: "rep-b", Roles: []string{"rep"}, Teams: []string{"U"}},
		{ID: "mgr", Roles: []string{"manager"}, Leads: []string{"T"}},
		{ID: "desk", Roles: []string{"order_desk"}},
	} {
		w.AddUser(wreOrg, u)
	}
	actor := func(user, role string) engine.Actor {
		return engine.Actor{Org: wreOrg, User: user, Roles: []string{role}}
	}
	adm, repA := actor("adm", "admin"), actor("rep-a", "rep")
	// Another's document: for a rep, one an admin created on their
	// customer; for everyone else, one rep-a created.
	r.callers = []*wreCaller{
		{class: fieldsales.ClassRep, user: "rep-a", role: "rep", other: adm},
		{class: fieldsales.ClassManager, user: "mgr", role: "manager", other: repA},
		{class: fieldsales.ClassAdmin, user: "adm", role: "admin", other: repA},
		{class: fieldsales.ClassBackOffice, user: "desk", role: "order_desk", other: repA},
	}
	if class != "" {
		r.callers = slices.DeleteFunc(r.callers, func(c *wreCaller) bool { return c.class != class })
	}
	for _, c := range r.callers {
		c.tok = w.Token(wreOrg, c.user, c.role)
	}

	// What the cells refer to: rep-a's customers (cA2 for the moves of a
	// document to another customer), a product, and a plan, a visit and an
	// order of cA that a visit, a note and a follow-up may name.
	r.fixture(adm, fieldsales.CollCustomers, "cA", map[string]any{"name": "A", "assigned_reps": []string{"rep-a"}})
	r.fixture(adm, fieldsales.CollCustomers, "cA2", map[string]any{"name": "A2", "assigned_reps": []string{"rep-a"}})
	r.fixture(adm, fieldsales.CollProducts, "p-1", accDoc(fieldsales.CollProducts, "", "p-1"))
	r.fixture(adm, fieldsales.CollVisitPlans, "ref-vp", accDoc(fieldsales.CollVisitPlans, "cA", "ref-vp"))
	r.fixture(adm, fieldsales.CollVisitLogs, "ref-vl", accDoc(fieldsales.CollVisitLogs, "cA", "ref-vl"))
	r.fixture(adm, fieldsales.CollOrders, "ref-or", accDoc(fieldsales.CollOrders, "cA", "ref-or"))
	refs := len(r.fixtures)
	r.refs = map[string]bool{}
	for _, f := range r.fixtures {
		r.refs[f.coll+"/"+f.id] = true
	}

	for _, c := range r.callers {
		for _, coll := range colls {
			r.creates(c, coll)
			for _, state := range r.states(coll) {
				for _, own := range []bool{true, false} {
					r.updates(c, coll, state, own)
					r.delete(c, coll, state, own)
				}
			}
		}
	}
	r.writeFixtures()
	_, cp, _ := w.Drain(w.Token(wreOrg, "adm", "admin"), "")
	r.push()
	r.check(cp)
	dist := map[string]int{}
	for _, x := range r.cells {
		dist[x.got.Status+" "+func() string {
			if x.got.Error != nil {
				return x.got.Error.Code
			}
			return ""
		}()]++
	}
	t.Logf("outcomes: %v", dist)
	t.Logf("%d cells over %d fixtures on %d collections", len(r.cells), len(r.fixtures)-refs, len(colls))
}

// schemas reads each collection's fields and enums from schemas/.
func (r *wreRun) schemas() {
	r.enums, r.props = map[string]map[string][]string{}, map[string][]string{}
	for coll := range fieldsales.WriteRules {
		raw, err := os.ReadFile("../../schemas/" + coll + ".json")
		must(r.t, "read the schema of "+coll, err)
		var s struct {
			Properties map[string]struct {
				Enum []string `json:"enum"`
			} `json:"properties"`
		}
		must(r.t, "decode the schema of "+coll, json.Unmarshal(raw, &s))
		r.enums[coll] = map[string][]string{}
		for f, p := range s.Properties {
			r.props[coll] = append(r.props[coll], f)
			if p.Enum != nil {
				r.enums[coll][f] = p.Enum
			}
		}
		slices.Sort(r.props[coll])
	}
}

// states lists the document states of coll: the schema's enum of the
// state field, the derived states of a visit, or one state for the rest.
func (r *wreRun) states(coll string) []string {
	rules := fieldsales.WriteRules[coll]
	switch {
	case rules.State == "":
		return []string{""}
	case r.enums[coll][rules.State] != nil:
		return r.enums[coll][rules.State]
	}
	if !slices.Equal(rules.States, []string{"in_progress", "checked_out"}) {
		r.t.Fatalf("%s: derived states %v, which this test does not build", coll, rules.States)
	}
	return rules.States
}

// wreValues holds a valid value of every field, different from the one
// the fixtures hold, and naming documents the relational rules accept.
var wreValues = map[string]map[string]any{
	fieldsales.CollCustomers: {"name": "Enum GmbH", "code": "C-9", "segment": "retail", "contacts": []any{map[string]any{"name": "Ann"}},
		"address": map[string]any{"city": "Munich"}, "location": map[string]any{"lat": 48.2, "lng": 11.5},
		"assigned_reps": []any{"rep-a", "rep-b"}, "credit_status": "hold", "notes": "enumerated", "price_list_id": "pl-9"},
	fieldsales.CollVisitPlans: {"customer_id": "cA2", "planned_start": "2026-12-02T09:00:00Z", "planned_end": "2026-12-02T10:00:00Z",
		"purpose": "enumerated", "rep_id": "rep-a", "assigned_by": "mgr"},
	fieldsales.CollVisitLogs: {"customer_id": "cA2", "visit_plan_id": "ref-vp",
		"check_in":  map[string]any{"at": "2026-12-01T09:06:00Z", "lat": 48.1, "lng": 11.6},
		"check_out": map[string]any{"at": "2026-12-01T09:55:00Z"}, "outcome": "info", "notes": "enumerated",
		"check_in_at": "2026-12-01T09:00:00Z", "check_out_at": "2026-12-01T10:00:00Z", "duration_s": 60,
		"verification": map[string]any{"status": "verified"}, "clock_offset_s": 5, "check_out_clock_offset_s": 5,
		"review": map[string]any{"status": "approved", "comment": "good"}},
	fieldsales.CollOrders: {"customer_id": "cA2", "lines": []any{map[string]any{"product_id": "p-1", "quantity": 3}}, "currency": "EUR",
		"requested_delivery": "2026-12-20", "notes": "enumerated", "erp_number": "4711", "total": "10", "line_totals": []any{"10"},
		"status_reason": "why", "submitted_at": "2026-12-01T10:00:00Z", "confirmed_at": "2026-12-01T11:00:00Z",
		"rejection": map[string]any{"reason": "no"}, "invoice_number": "INV-1", "delivered_at": "2026-12-02T10:00:00Z",
		"invoiced_at": "2026-12-03T10:00:00Z", "status_changed_at": "2026-12-01T10:00:00Z", "matrix_version": "v9"},
	fieldsales.CollCustomerNotes: {"customer_id": "cA2", "text": "enumerated", "created_at": "2026-12-01T12:00:00Z", "tags": []any{"t"},
		"visit_log_id": "ref-vl"},
	fieldsales.CollFollowUps: {"customer_id": "cA2", "order_id": "ref-or", "activity": "price_query", "description": "enumerated",
		"responsible_role": "order_desk", "assigned_to": "desk", "due_at": "2026-12-05T10:00:00Z", "blocked_reason": "waiting",
		"result": map[string]any{"erp_number": "1"}, "matrix_version": "v9", "closed_at": "2026-12-05T10:00:00Z", "title": "T",
		"rep_id": "rep-a", "accountable_role": "sales_manager", "consulted_roles": []any{"pricing"}, "informed_roles": []any{"rep"},
		"notify_on_done": []any{"rep"}, "notify_on_blocked": []any{"rep"}, "depends_on": []any{"x-1"}, "note": "n",
		"closed_by": "desk", "escalated_at": "2026-12-05T10:00:00Z", "rejection": map[string]any{"reason": "no"},
		"created_at": "2026-12-01T10:00:00Z", "blocked_at": "2026-12-04T10:00:00Z"},
	fieldsales.CollProducts: {"sku": "SKU-9", "name": "enumerated", "category": "valves", "unit": "pc", "list_price": "12.50",
		"currency": "EUR", "active": false},
	fieldsales.CollPriceLists: {"name": "enumerated", "currency": "USD", "segment": "retail", "valid_from": "2026-01-01",
		"prices": map[string]any{"p-1": "11"}},
}

// base is a document of coll its caller may create where the table lets
// it: on customer cA, a checked-out visit (a rep has one in progress at a
// time), a back-office follow-up without a customer (it reads none).
func (r *wreRun) base(c *wreCaller, coll, marker string) map[string]any {
	cust := "cA"
	if coll == fieldsales.CollFollowUps && c.class == fieldsales.ClassBackOffice {
		cust = ""
	}
	return accDoc(coll, cust, marker)
}

// stored is base as a fixture: a customer assigned to rep-a, so that rep-a
// and their manager read it whoever created it.
func (r *wreRun) stored(c *wreCaller, coll, marker string) map[string]any {
	doc := r.base(c, coll, marker)
	if coll == fieldsales.CollCustomers {
		doc["assigned_reps"] = []any{"rep-a"}
	}
	return doc
}

// fixture registers a document to write before the cells run.
func (r *wreRun) fixture(owner engine.Actor, coll, id string, doc map[string]any) *wreFixture {
	f := &wreFixture{owner: owner, coll: coll, id: id, doc: doc}
	r.fixtures = append(r.fixtures, f)
	return f
}

func (r *wreRun) nextID() string {
	r.n++
	return fmt.Sprintf("e%05d", r.n)
}

func (r *wreRun) cell(c *wreCaller, name, coll, id string, mut map[string]any) *wreCell {
	x := &wreCell{name: fmt.Sprintf("%s: %s %s", c.class, name, coll), caller: c, key: coll + "/" + id, mut: mut}
	r.cells = append(r.cells, x)
	return x
}

func (x *wreCell) refuse(code, ptr string) {
	if x.code == "" && code != "" {
		x.code, x.ptr = code, ptr
	}
}

// creates: the base document, then the base with each other field of the
// schema, and with each value of a state field; and an id in the server's
// id space.
func (r *wreRun) creates(c *wreCaller, coll string) {
	rules := fieldsales.WriteRules[coll]
	try := func(name, field string, v any) {
		id := r.nextID()
		doc := r.base(c, coll, id)
		if field != "" {
			doc[field] = v
		}
		x := r.cell(c, "create "+name, coll, id, mCreate("m."+id, coll, id, doc))
		x.version = 1
		x.refuse(wrOp(c.class, coll, engine.OpCreate, true, "", nil))
		for _, k := range slices.Sorted(maps.Keys(doc)) {
			if code := wrFieldStatic(c.class, coll, engine.OpCreate, k, doc[k]); code != "" {
				x.refuse(code, "/doc/"+k)
			}
		}
		x.refuse(r.createRelation(c, coll, field))
	}
	try("the base document", "", nil)
	for _, f := range r.props[coll] {
		if _, inBase := r.base(c, coll, "")[f]; inBase && f != rules.State {
			continue
		}
		if enum := r.enums[coll][f]; enum != nil {
			for _, v := range enum {
				try(fmt.Sprintf("with %s %q", f, v), f, v)
			}
			continue
		}
		try("with "+f, f, wreValues[coll][f])
	}
	if rules.IDPrefix != "" {
		id := rules.IDPrefix + r.nextID()
		x := r.cell(c, "create in the server's id space", coll, id, mCreate("m."+id, coll, id, r.base(c, coll, id)))
		x.refuse(wrOp(c.class, coll, engine.OpCreate, true, "", nil))
		x.refuse(fieldsales.CodeReservedID, "/id")
	}
}

// createRelation is what fieldsales.Relations adds to a create that writes
// field (the table allowed the rest).
func (r *wreRun) createRelation(c *wreCaller, coll, field string) (string, string) {
	switch {
	// "A visit log's review is written by a manager who leads the visit's
	// rep, or an admin, and never on the create."
	case coll == fieldsales.CollVisitLogs && field == "review" && c.class != fieldsales.ClassAdmin:
		return engine.CodeFieldNotWritable, "/doc/review"
	// "A create attached to a customer needs the customer there": the
	// back office reads no customer.
	case coll == fieldsales.CollFollowUps && field == "customer_id" && c.class == fieldsales.ClassBackOffice:
		return fieldsales.CodeCustomerNotInScope, "/doc/customer_id"
	// "A follow-up's order_id names a document of the same customer that
	// the writer reads": the back office's unattached follow-up has none.
	case coll == fieldsales.CollFollowUps && field == "order_id" && c.class == fieldsales.ClassBackOffice:
		return fieldsales.CodeInvalidReference, "/doc/order_id"
	}
	return "", ""
}

// stateDoc is the fixture of coll in state, owned by owner.
func (r *wreRun) stateDoc(c *wreCaller, coll, state string, owner engine.Actor, id string) map[string]any {
	doc := r.stored(c, coll, id)
	if owner.User != c.user && coll == fieldsales.CollFollowUps && c.class == fieldsales.ClassBackOffice {
		// Another's follow-up the desk reads: one routed to its role.
		doc = accDoc(coll, "cA", id)
		doc["responsible_role"] = "order_desk"
	}
	switch rules := fieldsales.WriteRules[coll]; {
	case coll == fieldsales.CollVisitLogs && state == "in_progress":
		delete(doc, "check_out")
	case rules.State != "" && coll != fieldsales.CollVisitLogs:
		doc[rules.State] = state
	}
	return doc
}

// reads says whether the caller's read set holds a document of coll owned
// by owner (docs/access.md, "Scope keys"): the back office reads reference
// data, its own unattached follow-ups and those routed to its role.
func (c *wreCaller) reads(coll string, own bool) bool {
	if c.class != fieldsales.ClassBackOffice {
		return true
	}
	return coll == fieldsales.CollFollowUps || coll == fieldsales.CollProducts || coll == fieldsales.CollPriceLists
}

func (r *wreRun) target(c *wreCaller, coll, state string, own bool) (*wreFixture, string) {
	owner := c.other
	if own {
		owner = engine.Actor{Org: wreOrg, User: c.user, Roles: []string{c.role}}
	}
	id := r.nextID()
	return r.fixture(owner, coll, id, r.stateDoc(c, coll, state, owner, id)), id
}

func whose(own bool) string {
	if own {
		return "own"
	}
	return "another's"
}

// updates: every field of the schema, and every value of a state field.
func (r *wreRun) updates(c *wreCaller, coll, state string, own bool) {
	rules := fieldsales.WriteRules[coll]
	try := func(field string, v any) {
		f, id := r.target(c, coll, state, own)
		from := f.doc[field]
		name := fmt.Sprintf("update %s to %v of %s %s document", field, v, whose(own), stateName(state))
		x := r.cell(c, name, coll, id, mUpdate("m."+id, coll, id, 1, map[string]any{field: v}))
		x.version, x.fixture = 2, f
		x.refuse(wrFieldStatic(c.class, coll, engine.OpUpdate, field, v), "/fields/"+field)
		if !c.reads(coll, own) {
			x.refuse(engine.CodeForbidden, "/id")
		}
		x.refuse(wrOp(c.class, coll, engine.OpUpdate, own, state, []string{field}))
		x.refuse(r.updateRelation(c, coll, field, own))
		x.refuse(wrFieldState(coll, engine.OpUpdate, field, v, state, from), "/fields/"+field)
	}
	for _, f := range r.props[coll] {
		if enum := r.enums[coll][f]; enum != nil {
			for _, v := range enum {
				if f == rules.State && v == state {
					continue // no change: nothing to decide
				}
				try(f, v)
			}
			continue
		}
		try(f, wreValues[coll][f])
	}
}

// updateRelation is what fieldsales.Relations adds to an update of field.
func (r *wreRun) updateRelation(c *wreCaller, coll, field string, own bool) (string, string) {
	// "A visit log's review is written by a manager who leads the visit's
	// rep": a manager's own visit has no manager in them.
	if coll == fieldsales.CollVisitLogs && field == "review" && c.class == fieldsales.ClassManager && own {
		return engine.CodeFieldNotWritable, "/fields/review"
	}
	return "", ""
}

func stateName(s string) string {
	if s == "" {
		return "stateless"
	}
	return s
}

func (r *wreRun) delete(c *wreCaller, coll, state string, own bool) {
	f, id := r.target(c, coll, state, own)
	x := r.cell(c, fmt.Sprintf("delete %s %s document", whose(own), stateName(state)), coll, id, mDelete("m."+id, coll, id, 1))
	x.version, x.deleted, x.fixture = 2, true, f
	if !c.reads(coll, own) {
		x.refuse(engine.CodeForbidden, "/id")
	}
	x.refuse(wrOp(c.class, coll, engine.OpDelete, own, state, nil))
}

// writeFixtures writes every fixture through the engine's trusted path as
// its owner, and fails unless each is applied at version 1.
func (r *wreRun) writeFixtures() {
	ctx := r.t.Context()
	byOwner := map[string][]engine.UpsertDoc{}
	owners := map[string]engine.Actor{}
	var order []string
	for _, f := range r.fixtures {
		fields := map[string]json.RawMessage{}
		for k, v := range f.doc {
			fields[k] = mustJSON(r.t, v)
		}
		k := f.owner.User
		if _, ok := owners[k]; !ok {
			order = append(order, k)
		}
		owners[k] = f.owner
		byOwner[k] = append(byOwner[k], engine.UpsertDoc{Collection: f.coll, ID: f.id, Fields: fields, CreateOnly: true})
	}
	// The references first: the admin's batch holds cA and the documents
	// the others name, in registration order.
	for _, k := range order {
		docs := byOwner[k]
		for len(docs) > 0 {
			n := min(len(docs), wreBatch)
			outs, err := r.w.Server.Eng.Upsert(ctx, owners[k], "fixture", docs[:n])
			must(r.t, "write fixtures as "+k, err)
			for i, o := range outs {
				if o.Status != engine.StatusApplied || o.Version != 1 {
					r.t.Fatalf("fixture %s/%s as %s: %s", docs[i].Collection, docs[i].ID, k, azDescribe(o))
				}
			}
			docs = docs[n:]
		}
	}
}

// push sends each caller's cells in pushes of the largest size allowed.
func (r *wreRun) push() {
	for _, c := range r.callers {
		var cells []*wreCell
		for _, x := range r.cells {
			if x.caller == c {
				cells = append(cells, x)
			}
		}
		for len(cells) > 0 {
			n := min(len(cells), wreBatch)
			muts := make([]map[string]any, n)
			for i, x := range cells[:n] {
				muts[i] = x.mut
			}
			for i, o := range r.w.Push(c.tok, "dev-"+c.user, muts) {
				cells[i].got = o
			}
			cells = cells[n:]
		}
	}
}

// check compares every outcome with the table, then the feed since cp
// with the applied cells.
func (r *wreRun) check(cp string) {
	want := map[string]accChange{}
	bad := 0
	for _, x := range r.cells {
		o := x.got
		if x.code == "" {
			op := engine.ChangePut
			if x.deleted {
				op = engine.ChangeDelete
			}
			want[x.key] = accChange{Op: op, Version: x.version}
			if o.Status != engine.StatusApplied || o.Version != x.version {
				bad++
				r.t.Errorf("%s (%s): got %s, the table says applied v%d", x.name, x.key, azDescribe(o), x.version)
			}
			continue
		}
		if o.Status != engine.StatusRejected || o.Error == nil || o.Error.Code != x.code || o.Error.Pointer != x.ptr {
			bad++
			r.t.Errorf("%s (%s): got %s, the table says rejected %s at %s", x.name, x.key, azDescribe(o), x.code, x.ptr)
		}
	}
	if bad > 50 {
		r.t.Fatalf("%d of %d cells disagree with the table", bad, len(r.cells))
	}
	got, _, _ := r.w.Drain(r.w.Token(wreOrg, "adm", "admin"), cp)
	for k, ch := range got {
		if w, ok := want[k]; r.refs[k] {
			continue
		} else if !ok {
			r.t.Errorf("%s changed, but every cell on it was refused", k)
		} else if ch.Op != w.Op || ch.Version != w.Version {
			r.t.Errorf("%s is %s v%d in the feed, want %s v%d", k, ch.Op, ch.Version, w.Op, w.Version)
		}
	}
	var missing []string
	for k := range want {
		if _, ok := got[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		r.t.Errorf("applied but not in the feed: %s", strings.Join(missing, ", "))
	}
}

// wreBatch is the size of the fixture writes and pushes: a phone's batch,
// small enough that FerretDB on a busy machine answers each well within
// the store's call timeout.
const wreBatch = 100
