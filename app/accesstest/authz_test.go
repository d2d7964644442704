package accesstest

// TestAuthorizationMatrix: who may read and write what, through the real
// server, for every endpoint, every role and every kind of target
// (docs/access.md, docs/protocol.md).
//
// Two organisations hold the same users (admin adm; reps rep-a in team T and
// rep-b in team U; manager mgr leading T; desk, of the back-office role
// order_desk) and the same documents under the same ids: customer cA
// assigned to rep-a with everything that hangs off it ("A's": the rep's own,
// the manager's team), customer cB assigned to rep-b ("B's": another user's
// in the same organisation), products and price lists. Each also holds
// documents under ids that exist only there ("other org's"), which the
// other organisation's callers try to reach by guessing; they must answer
// exactly like ids that exist nowhere ("nonexistent").
//
// Callers: rep-a, mgr, desk and adm of org-1, and adm of org-2. For the
// sync push, every caller sends a create, an update and a delete of every
// collection on every kind of target, each on a document of its own, plus
// the per-field, per-role and per-state rules; each outcome must be the
// documented one, and the organisations' feeds must show exactly the
// allowed changes (a refused mutation changes nothing, in either
// organisation). The pull shows each caller exactly its read set; /v1/me
// and the admin API answer by role and organisation; every refused request
// has the documented status and code and changes nothing.
//
// Follow-ups routed to a back-office role (responsible_role) are written
// only by the server: the field is readOnly even for admins over sync, and
// the admin's document endpoint writes customers, products and price lists
// only. So order_desk's role scope is covered here by what it must not see
// and must not write; the role grants themselves are covered by the
// engine's contract suite (sync/storetest). The matrix runs with the
// workflow off (--workflows=false): the workflow would route the follow-ups
// the rows raise and check the orders they submit, which this model does
// not describe; workflow_test.go covers who sees and works routed
// follow-ups.

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/internal/apptest"
	"github.com/fieldsync/fieldsync/sync/engine"
)

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	testAuthorizationMatrix(t, onSQLite, azAllCollections)
}

// TestAuthorizationMatrixMongoDB runs the matrix on the MongoDB store
// (FerretDB): every role, endpoint and target, on fewer collections (one of
// each kind: a customer, a document attached to one, reference data), to
// keep it near 10 s.
func TestAuthorizationMatrixMongoDB(t *testing.T) {
	t.Parallel()
	testAuthorizationMatrix(t, onMongoDB, []string{fieldsales.CollCustomers, fieldsales.CollCustomerNotes, fieldsales.CollProducts})
}

const (
	azOrg1 = "org-1"
	azOrg2 = "org-2"
)

var azAllCollections = []string{fieldsales.CollCustomers, fieldsales.CollVisitPlans, fieldsales.CollVisitLogs, fieldsales.CollOrders,
	fieldsales.CollCustomerNotes, fieldsales.CollFollowUps, fieldsales.CollProducts, fieldsales.CollPriceLists}

var azShort = map[string]string{
	fieldsales.CollCustomers: "cu", fieldsales.CollVisitPlans: "vp", fieldsales.CollVisitLogs: "vl", fieldsales.CollOrders: "or",
	fieldsales.CollCustomerNotes: "no", fieldsales.CollFollowUps: "fu", fieldsales.CollProducts: "pr", fieldsales.CollPriceLists: "pl",
}

func azAttached(coll string) bool {
	return coll != fieldsales.CollCustomers && coll != fieldsales.CollProducts && coll != fieldsales.CollPriceLists
}

func azReference(coll string) bool {
	return coll == fieldsales.CollProducts || coll == fieldsales.CollPriceLists
}

// Targets of a mutation.
const (
	tgtA       = "A's"         // rep-a's customer and what hangs off it
	tgtB       = "B's"         // rep-b's
	tgtForeign = "other org's" // an id that exists only in the other organisation
	tgtNone    = "nonexistent" // an id that exists nowhere
)

var azTargets = []string{tgtA, tgtB, tgtForeign, tgtNone}

var azTargetKey = map[string]string{tgtA: "a", tgtB: "b", tgtForeign: "f", tgtNone: "n"}

// Visibility classes of fixture documents.
const (
	clsA    = "A"    // keys user:rep-a (customer cA and its history, rep-a's own)
	clsB    = "B"    // keys user:rep-b
	clsPub  = "pub"  // products and price lists
	clsDesk = "desk" // the desk user's own
)

type azCaller struct {
	key, name string // key goes into ids
	org, user string
	tok       string
	sees      []string // visibility classes in its read set
	admin     bool
}

func (c *azCaller) other() string {
	if c.org == azOrg1 {
		return azOrg2
	}
	return azOrg1
}

func (c *azCaller) seesClass(cls string) bool { return slices.Contains(c.sees, cls) }

// class is the caller's class in the write-rule table.
func (c *azCaller) class() string {
	return wrClassOf(map[string]string{"rep": "rep", "mgr": "manager", "desk": "order_desk", "adm": "admin", "adm2": "admin"}[c.key])
}

// azFixture is a document the test creates before the rows run.
type azFixture struct {
	org, coll, id, cls string
	doc                map[string]any
}

// azRow is one mutation of the matrix and the outcome docs/access.md
// promises for it.
type azRow struct {
	name    string
	caller  *azCaller
	mut     map[string]any
	key     string // "collection/id" the mutation touches
	status  string // applied or rejected
	version int64  // applied: the resulting version
	deleted bool   // applied: a delete
	code    string // rejected: error code and pointer
	pointer string
	// sameAs names the row whose answer this one must equal, ids aside:
	// an id of another organisation answers like one that does not exist.
	sameAs *azRow
	ids    []string // ids to blank when comparing with sameAs

	got engine.Outcome
}

func (r *azRow) String() string { return r.caller.name + ": " + r.name }

type azMatrix struct {
	t       *testing.T
	w       *accWorld
	colls   []string
	callers []*azCaller
	fx      []azFixture
	rows    []*azRow
	admin   map[string]*azCaller // the admin of each organisation
	cp      map[string]string    // each organisation's admin feed checkpoint
}

func testAuthorizationMatrix(t *testing.T, store accStore, colls []string) {
	w := newAccWorld(t, withoutWorkflows(store))
	m := &azMatrix{t: t, w: w, colls: colls, admin: map[string]*azCaller{}, cp: map[string]string{}}
	m.directory()
	m.fixtures()
	m.whoAmI()
	m.pullVisibility()
	m.refusedRequests()
	m.pushRows()
	m.adminAPI()
}

// directory creates both organisations' teams and users.
func (m *azMatrix) directory() {
	w := m.w
	for _, org := range []string{azOrg1, azOrg2} {
		w.AddTeam(org, "T")
		w.AddTeam(org, "U")
		w.AddTeam(org, "only-"+org+"-team")
		for _, u := range []accUser{
			{ID: "adm", Roles: []string{"admin"}},
			{ID: "rep-a", Roles: []string{"rep"}, Teams: []string{"T"}, Password: true},
			{ID: "rep-b", Roles: []string{"rep"}, Teams: []string{"U"}},
			{ID: "mgr", Roles: []string{"manager"}, Leads: []string{"T"}},
			{ID: "desk", Roles: []string{"order_desk"}},
			{ID: "only-" + org, Roles: []string{"rep"}},
		} {
			w.AddUser(org, u)
		}
	}
	// The tokens name the role each user has in the directory; the engine
	// takes the directory's roles, teams and leads.
	m.callers = []*azCaller{
		{key: "rep", name: "rep A", org: azOrg1, user: "rep-a", tok: w.Token(azOrg1, "rep-a", "rep"), sees: []string{clsA, clsPub}},
		{key: "mgr", name: "manager of T", org: azOrg1, user: "mgr", tok: w.Token(azOrg1, "mgr", "manager"), sees: []string{clsA, clsPub}},
		{key: "desk", name: "order_desk", org: azOrg1, user: "desk", tok: w.Token(azOrg1, "desk", "order_desk"), sees: []string{clsDesk, clsPub}},
		{key: "adm", name: "admin", org: azOrg1, user: "adm", tok: w.Token(azOrg1, "adm", "admin"), sees: []string{clsA, clsB, clsPub, clsDesk}, admin: true},
		{key: "adm2", name: "org-2 admin", org: azOrg2, user: "adm", tok: w.Token(azOrg2, "adm", "admin"), sees: []string{clsA, clsB, clsPub, clsDesk}, admin: true},
	}
	m.admin[azOrg1], m.admin[azOrg2] = m.callers[3], m.callers[4]
}

func (m *azMatrix) caller(key string) *azCaller {
	for _, c := range m.callers {
		if c.key == key {
			return c
		}
	}
	panic(key)
}

// fixture registers a document: customers of class A or B are assigned to
// rep-a or rep-b, attached documents hang off cA or cB.
func (m *azMatrix) fixture(org, coll, id, cls string, doc map[string]any) {
	if doc == nil {
		cust := map[string]string{clsA: "cA", clsB: "cB"}[cls]
		doc = accDoc(coll, cust, org+" "+id)
	}
	if coll == fieldsales.CollCustomers {
		doc["assigned_reps"] = []string{map[string]string{clsA: "rep-a", clsB: "rep-b"}[cls]}
	}
	m.fx = append(m.fx, azFixture{org: org, coll: coll, id: id, cls: cls, doc: doc})
}

// both registers a document in both organisations under one id.
func (m *azMatrix) both(coll, id, cls string, doc func() map[string]any) {
	for _, org := range []string{azOrg1, azOrg2} {
		var d map[string]any
		if doc != nil {
			d = doc()
		}
		m.fixture(org, coll, id, cls, d)
	}
}

func (m *azMatrix) fixtures() {
	m.both(fieldsales.CollCustomers, "cA", clsA, nil)
	m.both(fieldsales.CollCustomers, "cB", clsB, nil)
	m.both(fieldsales.CollCustomers, "shared-c", clsA, nil) // for the admin API's assignments
	// Each organisation's own: the rep's and the desk's unattached
	// follow-ups, a customer only it has.
	for _, org := range []string{azOrg1, azOrg2} {
		m.fixture(org, fieldsales.CollFollowUps, "rep-a-own-fu", clsA, accDoc(fieldsales.CollFollowUps, "", org+" rep-a's own"))
		m.fixture(org, fieldsales.CollFollowUps, "desk-own-fu", clsDesk, accDoc(fieldsales.CollFollowUps, "", org+" desk's own"))
		m.fixture(org, fieldsales.CollCustomers, "only-"+org+"-c", clsA, nil)
	}
	m.generic()
	m.fieldRules()

	// Create them: customers and reference data by the admin, attached
	// documents by the rep of their customer, the desk's by the desk.
	for _, org := range []string{azOrg1, azOrg2} {
		by := map[string][]map[string]any{}
		for _, f := range m.fx {
			if f.org != org {
				continue
			}
			who := "adm"
			switch {
			case f.cls == clsDesk:
				who = "desk"
			case f.coll == fieldsales.CollCustomers || azReference(f.coll):
			case f.cls == clsA:
				who = "rep-a"
			case f.cls == clsB:
				who = "rep-b"
			}
			by[who] = append(by[who], mCreate("fx."+f.id, f.coll, f.id, f.doc))
		}
		for _, who := range []struct{ user, role string }{{"adm", "admin"}, {"rep-a", "rep"}, {"rep-b", "rep"}, {"desk", "order_desk"}} {
			m.w.MustApply(m.w.Token(org, who.user, who.role), "fixtures", by[who.user])
		}
		_, m.cp[org], _ = m.w.Drain(m.admin[org].tok, "")
	}
}

// generic registers, for every caller, collection, operation and target,
// the row and the document it acts on.
func (m *azMatrix) generic() {
	for _, c := range m.callers {
		for _, coll := range m.colls {
			for _, op := range []string{"create", "update", "delete"} {
				var none, foreign *azRow
				for _, tgt := range azTargets {
					r := m.genericRow(c, coll, op, tgt)
					switch tgt {
					case tgtForeign:
						foreign = r
					case tgtNone:
						none = r
					}
				}
				foreign.sameAs = none
			}
		}
	}
}

func (m *azMatrix) genericRow(c *azCaller, coll, op, tgt string) *azRow {
	id := strings.Join([]string{c.key, azShort[coll], op, azTargetKey[tgt]}, ".")
	r := &azRow{name: fmt.Sprintf("%s %s, %s", op, coll, tgt), caller: c, key: coll + "/" + id, ids: []string{id}}
	m.rows = append(m.rows, r)
	mid := "m." + id
	cls := map[string]string{tgtA: clsA, tgtB: clsB, tgtForeign: clsA}[tgt]
	if azReference(coll) {
		cls = clsPub
	}
	// The document the row acts on: in both organisations for A's and B's
	// (the other organisation's copy must not change), in the other one
	// only for other org's.
	needsDoc := op != "create" || !azAttached(coll)
	switch {
	case !needsDoc || tgt == tgtNone:
	case tgt == tgtForeign:
		m.fixture(c.other(), coll, id, cls, nil)
	default:
		m.both(coll, id, cls, nil)
	}
	sees := tgt == tgtA || tgt == tgtB
	sees = sees && (azReference(coll) || c.seesClass(cls))
	writesFields := !azReference(coll) || c.admin
	reject := func(code, ptr string) { r.status, r.code, r.pointer = engine.StatusRejected, code, ptr }
	apply := func(v int64) { r.status, r.version = engine.StatusApplied, v }
	// What the write-rule table says of the operation on the target, once
	// the caller sees it (writerules_oracle_test.go).
	owner := map[string]string{clsA: "rep-a", clsB: "rep-b", clsPub: "adm"}[cls]
	if coll == fieldsales.CollCustomers {
		owner = "adm"
	}
	class := c.class()
	byTable := func(op engine.Op, v int64, fields ...string) {
		body := accDoc(coll, "cA", "")
		if code, ptr := wrOp(class, coll, op, c.user == owner, wrState(coll, body), fields); code != "" {
			reject(code, ptr)
			return
		}
		for _, f := range fields {
			if code := wrField(class, coll, op, f, "x", wrState(coll, body), body[f]); code != "" {
				reject(code, "/fields/"+f)
				return
			}
		}
		apply(v)
	}

	switch op {
	case "create":
		doc := accDoc(coll, "", c.org+" "+id)
		if azAttached(coll) {
			cust := map[string]string{tgtA: "cA", tgtB: "cB", tgtForeign: "only-" + c.other() + "-c", tgtNone: "c-nowhere"}[tgt]
			doc = accDoc(coll, cust, c.org+" "+id)
			r.ids = append(r.ids, cust)
		}
		r.mut = mCreate(mid, coll, id, doc)
		if code, ptr := wrOp(class, coll, engine.OpCreate, true, "", nil); code != "" {
			// Checked before anything is read: no hint whether the id exists.
			reject(code, ptr)
			break
		}
		switch {
		case !writesFields:
			reject(engine.CodeFieldNotWritable, "/doc/"+slices.Sorted(maps.Keys(doc))[0])
		case azAttached(coll) && sees:
			apply(1)
		case azAttached(coll):
			reject(fieldsales.CodeCustomerNotInScope, "/doc/customer_id")
		case tgt == tgtA || tgt == tgtB:
			// The id is taken in this organisation, seen or not.
			reject(engine.CodeAlreadyExists, "/id")
		default:
			apply(1)
		}
	case "update":
		r.mut = mUpdate(mid, coll, id, 1, map[string]any{accTextField[coll]: c.org + " changed by " + c.name})
		switch {
		case !writesFields:
			reject(engine.CodeFieldNotWritable, "/fields/"+accTextField[coll])
		case tgt == tgtForeign || tgt == tgtNone:
			reject(engine.CodeNotFound, "/id")
		case sees:
			byTable(engine.OpUpdate, 2, accTextField[coll])
		default:
			reject(engine.CodeForbidden, "/id")
		}
	case "delete":
		r.mut = mDelete(mid, coll, id, 1)
		switch {
		case tgt == tgtForeign || tgt == tgtNone:
			reject(engine.CodeNotFound, "/id")
		case !writesFields:
			// Reference data: every user reads it, only admins write it.
			reject(engine.CodeForbidden, "/id")
		case sees:
			byTable(engine.OpDelete, 2)
			r.deleted = r.status == engine.StatusApplied
		default:
			reject(engine.CodeForbidden, "/id")
		}
	}
	return r
}

// fieldRules registers the per-field, per-role and per-state rows, for the
// callers of org-1.
func (m *azMatrix) fieldRules() {
	row := func(c *azCaller, name, coll, id string, mut map[string]any, status string, v int64, code, ptr string) {
		m.rows = append(m.rows, &azRow{name: name, caller: c, mut: mut, key: coll + "/" + id, status: status, version: v,
			code: code, pointer: ptr})
	}
	ok := func(c *azCaller, name, coll, id string, mut map[string]any, v int64) {
		row(c, name, coll, id, mut, engine.StatusApplied, v, "", "")
	}
	no := func(c *azCaller, name, coll, id string, mut map[string]any, code, ptr string) {
		row(c, name, coll, id, mut, engine.StatusRejected, 0, code, ptr)
	}
	vl, cu, or, fu, vp, no_ := fieldsales.CollVisitLogs, fieldsales.CollCustomers, fieldsales.CollOrders, fieldsales.CollFollowUps,
		fieldsales.CollVisitPlans, fieldsales.CollCustomerNotes
	review := map[string]any{"review": map[string]any{"status": "approved", "comment": "good visit"}}

	for _, k := range []string{"rep", "mgr", "desk", "adm"} {
		c := m.caller(k)
		fid := func(s string) string { return k + ".rule." + s }
		upd := func(coll, id string, fields map[string]any) map[string]any {
			return mUpdate("m."+id, coll, id, 1, fields)
		}

		// Only the rep's manager (or an admin) writes a visit log's review.
		id := fid("review")
		m.fixture(azOrg1, vl, id, clsA, nil)
		if k == "mgr" || k == "adm" {
			ok(c, "review of A's visit log", vl, id, upd(vl, id, review), 2)
		} else {
			no(c, "review of A's visit log", vl, id, upd(vl, id, review), engine.CodeFieldNotWritable, "/fields/review")
		}

		// Only admins and managers write assigned_reps.
		id = fid("assign")
		m.fixture(azOrg1, cu, id, clsA, nil)
		reps := map[string]any{"assigned_reps": []string{"rep-a", "rep-b"}}
		if k == "mgr" || k == "adm" {
			ok(c, "assigned_reps of A's customer", cu, id, upd(cu, id, reps), 2)
		} else {
			no(c, "assigned_reps of A's customer", cu, id, upd(cu, id, reps), engine.CodeFieldNotWritable, "/fields/assigned_reps")
		}

		// Nobody writes readOnly fields over sync, admins included.
		for _, ro := range []struct{ coll, field string }{
			{cu, "credit_status"}, {vl, "verification"}, {or, "total"}, {fu, "status"}, {fu, "responsible_role"}, {vp, "assigned_by"},
		} {
			id := fid("ro-" + azShort[ro.coll] + "-" + ro.field)
			m.fixture(azOrg1, ro.coll, id, clsA, nil)
			val := map[string]any{"credit_status": "hold", "verification": map[string]any{"status": "verified"}, "total": 1, "status": "done",
				"responsible_role": "order_desk", "assigned_by": "mgr"}[ro.field]
			no(c, "readOnly "+ro.coll+"."+ro.field+" (update)", ro.coll, id, upd(ro.coll, id, map[string]any{ro.field: val}),
				engine.CodeServerField, "/fields/"+ro.field)
		}
		for _, ro := range []struct{ coll, field string }{{or, "erp_number"}, {fu, "responsible_role"}, {vl, "duration_s"}} {
			id := fid("ro-create-" + azShort[ro.coll] + "-" + ro.field)
			doc := accDoc(ro.coll, "cA", id)
			doc[ro.field] = map[string]any{"erp_number": "4711", "responsible_role": "order_desk", "duration_s": 60}[ro.field]
			code, ptr := engine.CodeServerField, "/doc/"+ro.field
			if rc, rp := wrOp(c.class(), ro.coll, engine.OpCreate, true, "", nil); rc != "" {
				code, ptr = rc, rp // the role may not create the document at all
			}
			no(c, "readOnly "+ro.coll+"."+ro.field+" (create)", ro.coll, id, mCreate("m."+id, ro.coll, id, doc), code, ptr)
		}

		// Past submitted, an order belongs to the back office and the
		// server: no device moves it there, whatever its role.
		id = fid("order-confirm")
		m.fixture(azOrg1, or, id, clsA, nil)
		no(c, "order draft -> confirmed", or, id, upd(or, id, map[string]any{"status": "confirmed"}), engine.CodeServerField, "/fields/status")
	}

	// A rep's field rules: no review on create, no assignment on create,
	// orders only between draft, submitted and cancelled, visit plans only
	// planned or cancelled, and a document never changes customers.
	rep := m.caller("rep")
	id := "rep.rule.review-create"
	doc := accDoc(vl, "cA", id)
	doc["review"] = review["review"]
	no(rep, "create a visit log with a review", vl, id, mCreate("m."+id, vl, id, doc), engine.CodeFieldNotWritable, "/doc/review")
	id = "rep.rule.assign-create"
	doc = accDoc(cu, "", id)
	doc["assigned_reps"] = []string{"rep-a"}
	no(rep, "create a customer with assigned_reps", cu, id, mCreate("m."+id, cu, id, doc), engine.CodeFieldNotWritable, "/doc/assigned_reps")
	id = "rep.rule.order-create-confirmed"
	doc = accDoc(or, "cA", id)
	doc["status"] = "confirmed"
	no(rep, "create an order as confirmed", or, id, mCreate("m."+id, or, id, doc), engine.CodeServerField, "/doc/status")
	id = "rep.rule.order-create-submitted"
	doc = accDoc(or, "cA", id)
	doc["status"] = "submitted"
	ok(rep, "create an order as submitted", or, id, mCreate("m."+id, or, id, doc), 1)

	status := func(coll, id, from, to string) map[string]any {
		d := accDoc(coll, "cA", azOrg1+" "+id)
		d["status"] = from
		m.fixture(azOrg1, coll, id, clsA, d)
		return mUpdate("m."+id, coll, id, 1, map[string]any{"status": to})
	}
	for _, s := range []struct {
		coll, from, to string
		code           string // "" when allowed
	}{
		{or, "draft", "submitted", ""},
		{or, "draft", "cancelled", ""},
		{or, "submitted", "cancelled", ""},
		{or, "submitted", "draft", engine.CodeInvalidTransition},
		{or, "cancelled", "draft", engine.CodeInvalidTransition},
		{or, "cancelled", "submitted", engine.CodeInvalidTransition},
		{or, "submitted", "delivered", engine.CodeServerField},
		{vp, "planned", "cancelled", ""},
		{vp, "planned", "done", engine.CodeServerField},
		// A cancelled plan is a record: no update at all (the table's grant).
		{vp, "cancelled", "planned", engine.CodeDocumentLocked},
	} {
		id := fmt.Sprintf("rep.rule.%s-%s-%s", azShort[s.coll], s.from, s.to)
		name := fmt.Sprintf("%s status %s -> %s", s.coll, s.from, s.to)
		ptr := "/fields/status"
		if s.code == engine.CodeDocumentLocked {
			ptr = "/id"
		}
		if s.code == "" {
			ok(rep, name, s.coll, id, status(s.coll, id, s.from, s.to), 2)
		} else {
			no(rep, name, s.coll, id, status(s.coll, id, s.from, s.to), s.code, ptr)
		}
	}
	id = "rep.rule.note-move"
	m.fixture(azOrg1, no_, id, clsA, nil)
	no(rep, "move A's note to B's customer", no_, id, mUpdate("m."+id, no_, id, 1, map[string]any{"customer_id": "cB"}),
		engine.CodeImmutableField, "/fields/customer_id")

	// A manager's rules stop at the team: B's visit log and customer are
	// out of scope even for the fields a manager may write.
	mgr := m.caller("mgr")
	id = "mgr.rule.review-b"
	m.fixture(azOrg1, vl, id, clsB, nil)
	no(mgr, "review of B's visit log", vl, id, mUpdate("m."+id, vl, id, 1, review), engine.CodeForbidden, "/id")
	id = "mgr.rule.assign-b"
	m.fixture(azOrg1, cu, id, clsB, nil)
	no(mgr, "assigned_reps of B's customer", cu, id, mUpdate("m."+id, cu, id, 1, map[string]any{"assigned_reps": []string{"rep-a"}}),
		engine.CodeForbidden, "/id")
	// The desk's own documents are its to change.
	desk := m.caller("desk")
	for _, op := range []string{"create", "update", "delete"} {
		id := "desk.rule.own-fu-" + op
		var mut map[string]any
		v := int64(2)
		switch op {
		case "create":
			mut, v = mCreate("m."+id, fu, id, accDoc(fu, "", azOrg1+" "+id)), 1
		case "update":
			m.fixture(azOrg1, fu, id, clsDesk, accDoc(fu, "", azOrg1+" "+id))
			mut = mUpdate("m."+id, fu, id, 1, map[string]any{"description": "done by the desk"})
		case "delete":
			m.fixture(azOrg1, fu, id, clsDesk, accDoc(fu, "", azOrg1+" "+id))
			mut = mDelete("m."+id, fu, id, 1)
		}
		ok(desk, op+" its own follow-up", fu, id, mut, v)
		if op == "delete" {
			m.rows[len(m.rows)-1].deleted = true
		}
	}
}

// whoAmI: /v1/me answers every caller from its own organisation's
// directory.
func (m *azMatrix) whoAmI() {
	for _, c := range m.callers {
		var me meBody
		if st := do(m.t, "GET", m.w.Server.URL+"/v1/me", c.tok, nil, &me); st != 200 || me.Org != c.org || me.ID != c.user ||
			me.Email != c.user+"@"+c.org+".example" {
			m.t.Errorf("%s: GET /v1/me = %d %+v", c.name, st, me)
		}
	}
}

// pullVisibility: a first pull delivers every document of the caller's
// read set and nothing else, and nothing of the other organisation; a
// checkpoint of another user, or of the same user id in the other
// organisation, is refused.
func (m *azMatrix) pullVisibility() {
	cps := map[string]string{}
	for _, c := range m.callers {
		got := map[string]json.RawMessage{}
		all, cp, _ := m.w.Drain(c.tok, "")
		cps[c.key] = cp
		for k, ch := range all {
			if ch.Op == engine.ChangePut {
				got[k] = ch.Doc
			}
		}
		want := map[string]bool{}
		for _, f := range m.fx {
			if f.org == c.org && c.seesClass(f.cls) {
				want[f.coll+"/"+f.id] = true
			}
		}
		for k, doc := range got {
			if !want[k] {
				m.t.Errorf("%s: pull: %s is not in its read set: %s", c.name, k, doc)
			} else if !strings.Contains(string(doc), c.org+" ") || strings.Contains(string(doc), c.other()) {
				m.t.Errorf("%s: pull: %s is another organisation's copy: %s", c.name, k, doc)
			}
		}
		for k := range want {
			if _, ok := got[k]; !ok {
				m.t.Errorf("%s: pull: %s is missing", c.name, k)
			}
		}
	}
	for _, r := range []struct {
		name, tok, cp string
	}{
		{"rep A with the admin's checkpoint", m.caller("rep").tok, cps["adm"]},
		{"the admin with rep A's checkpoint", m.caller("adm").tok, cps["rep"]},
		{"org-2's adm with org-1's adm's checkpoint", m.caller("adm2").tok, cps["adm"]},
		{"org-1's adm with org-2's adm's checkpoint", m.caller("adm").tok, cps["adm2"]},
	} {
		var e errorReply
		if st := do(m.t, "GET", m.w.Server.URL+"/v1/sync/pull?checkpoint="+r.cp, r.tok, nil, &e); st != 400 ||
			e.Error.Code != engine.CodeBadCheckpoint || e.Error.Pointer != "/checkpoint" {
			m.t.Errorf("pull: %s = %d %+v, want 400 bad_checkpoint", r.name, st, e.Error)
		}
	}
}

// refusedRequests: requests refused as a whole (no token, a forged token, a
// disabled user) get their documented status and code on every sync
// endpoint and change nothing.
func (m *azMatrix) refusedRequests() {
	w := m.w
	w.AddUser(azOrg1, accUser{ID: "gone", Roles: []string{"rep"}})
	w.Admin(azOrg1, "POST", "/users/gone/disable", nil, 200)
	rep := m.caller("rep").tok
	forged := rep[:len(rep)-4] + "AAAA"
	attempt := mustJSON(m.t, push("dev-x", mUpdate("m.refused", fieldsales.CollCustomers, "cA", 1, map[string]any{"notes": "refused"}),
		mCreate("m.refused-2", fieldsales.CollCustomerNotes, "refused-note", accDoc(fieldsales.CollCustomerNotes, "cA", "refused"))))
	for _, c := range []struct {
		who, tok   string
		status     int
		code       string
		meToo, doc bool
	}{
		{who: "no token", status: 401, code: engine.CodeUnauthenticated, meToo: true},
		{who: "a forged token", tok: forged, status: 401, code: engine.CodeTokenInvalid, meToo: true},
		{who: "a disabled rep", tok: w.Token(azOrg1, "gone", "rep"), status: 403, code: engine.CodeUserDisabled},
	} {
		reqs := []struct{ method, path string }{{"POST", "/v1/sync/push"}, {"GET", "/v1/sync/pull"}}
		if c.meToo {
			reqs = append(reqs, struct{ method, path string }{"GET", "/v1/me"})
		}
		for _, rq := range reqs {
			var body []byte
			if rq.method == "POST" {
				body = attempt
			}
			var e errorReply
			if st := do(m.t, rq.method, w.Server.URL+rq.path, c.tok, body, &e); st != c.status || e.Error.Code != c.code {
				m.t.Errorf("%s: %s %s = %d %s, want %d %s", c.who, rq.method, rq.path, st, e.Error.Code, c.status, c.code)
			}
		}
	}
	// A token that claims more than the directory says gets what the
	// directory says: rep-a with a token naming the admin role reads and
	// writes as a rep.
	liar := w.Token(azOrg1, "rep-a", "admin")
	if got, want := accIDs(w.Visible(liar)), accIDs(w.Visible(m.caller("rep").tok)); !slices.Equal(got, want) {
		m.t.Errorf("rep A with a token claiming admin pulls %v, want rep A's %v", got, want)
	}
	outs := w.Push(liar, "dev-liar", []map[string]any{
		mUpdate("m.liar-1", fieldsales.CollCustomers, "cB", 1, map[string]any{"notes": "liar"}),
		mCreate("m.liar-2", fieldsales.CollProducts, "liar-product", accDoc(fieldsales.CollProducts, "", "liar")),
	})
	if o := outs[0]; o.Error == nil || o.Error.Code != engine.CodeForbidden {
		m.t.Errorf("rep A with a token claiming admin, update of B's customer: %s, want rejected forbidden", azDescribe(o))
	}
	if o := outs[1]; o.Error == nil || o.Error.Code != engine.CodeForbidden {
		m.t.Errorf("rep A with a token claiming admin, create of a product: %s, want rejected forbidden", azDescribe(o))
	}
	m.unchanged("refused whole requests, and a token claiming admin")
}

// unchanged fails unless neither organisation's feed moved.
func (m *azMatrix) unchanged(what string) {
	for _, org := range []string{azOrg1, azOrg2} {
		var ch map[string]accChange
		ch, m.cp[org], _ = m.w.Drain(m.admin[org].tok, m.cp[org])
		if len(ch) > 0 {
			m.t.Errorf("%s changed %s: %v", what, org, accIDs(ch))
		}
	}
}

// pushRows sends each caller's rows in one push and checks every outcome,
// then that the feeds of both organisations changed by exactly the applied
// rows.
func (m *azMatrix) pushRows() {
	for _, c := range m.callers {
		var rows []*azRow
		var muts []map[string]any
		for _, r := range m.rows {
			if r.caller == c {
				rows = append(rows, r)
				muts = append(muts, r.mut)
			}
		}
		for i, o := range m.w.Push(c.tok, "dev-"+c.key, muts) {
			rows[i].got = o
		}
		want := map[string]map[string]accChange{azOrg1: {}, azOrg2: {}}
		for _, r := range rows {
			m.checkRow(r)
			if r.status == engine.StatusApplied {
				op := engine.ChangePut
				if r.deleted {
					op = engine.ChangeDelete
				}
				want[c.org][r.key] = accChange{Op: op, Version: r.version}
			}
		}
		for _, org := range []string{azOrg1, azOrg2} {
			var got map[string]accChange
			got, m.cp[org], _ = m.w.Drain(m.admin[org].tok, m.cp[org])
			for k, ch := range got {
				if w, ok := want[org][k]; !ok {
					m.t.Errorf("%s's push changed %s in %s (%s v%d), which no allowed row touches (refused rows: %s)",
						c.name, k, org, ch.Op, ch.Version, m.rowsOn(rows, k))
				} else if ch.Op != w.Op || ch.Version != w.Version {
					m.t.Errorf("%s's push: %s in %s is %s v%d, want %s v%d", c.name, k, org, ch.Op, ch.Version, w.Op, w.Version)
				}
			}
			for k := range want[org] {
				if _, ok := got[k]; !ok {
					m.t.Errorf("%s's push: the applied change of %s is not in %s's feed", c.name, k, org)
				}
			}
		}
	}
}

func (m *azMatrix) rowsOn(rows []*azRow, key string) string {
	var names []string
	for _, r := range rows {
		if r.key == key {
			names = append(names, r.name)
		}
	}
	return strings.Join(names, "; ")
}

func (m *azMatrix) checkRow(r *azRow) {
	o := r.got
	fail := m.t.Errorf
	switch r.status {
	case engine.StatusApplied:
		if o.Status != engine.StatusApplied || o.Version != r.version {
			fail("%s: got %s, want applied v%d", r, azDescribe(o), r.version)
		}
	default:
		if o.Status != engine.StatusRejected || o.Error == nil || o.Error.Code != r.code || o.Error.Pointer != r.pointer {
			fail("%s: got %s, want rejected %s at %s", r, azDescribe(o), r.code, r.pointer)
		}
	}
	if r.sameAs != nil && azNormal(r.got, r.ids) != azNormal(r.sameAs.got, r.sameAs.ids) {
		fail("%s: the other organisation's id answers %s, an id that exists nowhere %s", r, azDescribe(r.got), azDescribe(r.sameAs.got))
	}
}

func azDescribe(o engine.Outcome) string {
	if o.Error != nil {
		return fmt.Sprintf("%s %s at %s (%s)", o.Status, o.Error.Code, o.Error.Pointer, o.Error.Message)
	}
	return fmt.Sprintf("%s v%d", o.Status, o.Version)
}

// azNormal is an outcome with the mutation's own ids blanked.
func azNormal(o engine.Outcome, ids []string) string {
	o.MutationID = ""
	b, _ := json.Marshal(o)
	s := string(b)
	for _, id := range ids {
		s = strings.ReplaceAll(s, id, "<id>")
	}
	return s
}

// adminAPI: only admins use the admin API, each on its own organisation;
// an id of another organisation is not found, like an id of no one; a
// refused request changes nothing, neither in the directory nor in the
// documents.
func (m *azMatrix) adminAPI() {
	w := m.w
	// rep-a of org-1 has a session on phone-a, so that revoking a device
	// has something to revoke.
	if st, _, e := apptest.Login(m.t, w.Server.URL, "rep-a@org-1.example", testPassword, "phone-a"); st != 200 {
		m.t.Fatalf("sign-in: %d %+v", st, e)
	}
	snapshot := func(org string) string {
		var b strings.Builder
		for _, p := range []string{"/users", "/teams", "/org", "/users/rep-a/sessions"} {
			b.Write(w.Admin(org, "GET", p, nil, 200))
		}
		return b.String()
	}
	before := map[string]string{azOrg1: snapshot(azOrg1), azOrg2: snapshot(azOrg2)}
	same := func(what string) {
		for _, org := range []string{azOrg1, azOrg2} {
			if now := snapshot(org); now != before[org] {
				m.t.Errorf("%s changed %s's directory:\nbefore %s\nafter  %s", what, org, before[org], now)
			}
		}
		m.unchanged(what)
	}
	type ep struct{ method, path, body string }
	endpoints := func(user, team, cust string) []ep {
		return []ep{
			{"GET", "/users", ""},
			{"POST", "/users", `{"id":"intruder","email":"intruder@evil.example","roles":["admin"]}`},
			{"GET", "/users/" + user, ""},
			{"PATCH", "/users/" + user, `{"name":"pwned","roles":["admin"]}`},
			{"GET", "/users/" + user + "/sessions", ""},
			{"DELETE", "/users/" + user + "/devices/phone-a", ""},
			{"GET", "/teams", ""},
			{"PATCH", "/teams/" + team, `{"name":"pwned"}`},
			{"POST", "/customers/" + cust + "/assign", `{"reps":["rep-b"]}`},
			{"POST", "/documents/customers", `{"docs":[{"id":"` + cust + `","fields":{"name":"pwned","assigned_reps":["rep-b"]}}]}`},
			{"POST", "/documents/products", `{"docs":[{"id":"p-pwned","fields":{"sku":"X","name":"pwned"}}]}`},
		}
	}
	call := func(tok string, e ep) (int, errorReply, []byte) {
		var body []byte
		if e.body != "" {
			body = []byte(e.body)
		}
		st, raw := doRaw(m.t, e.method, w.Server.URL+"/v1/admin"+e.path, tok, body)
		var er errorReply
		json.Unmarshal(raw, &er)
		return st, er, raw
	}

	// Not admins: 403 forbidden on every route, whatever the target.
	for _, k := range []string{"rep", "mgr", "desk"} {
		c := m.caller(k)
		for _, tgt := range [][3]string{{"rep-a", "T", "cA"}, {"mgr", "T", "cB"}, {"only-" + azOrg2, "only-" + azOrg2 + "-team", "only-" + azOrg2 + "-c"}} {
			for _, e := range endpoints(tgt[0], tgt[1], tgt[2]) {
				if st, er, _ := call(c.tok, e); st != 403 || er.Error.Code != engine.CodeForbidden {
					m.t.Errorf("%s: %s /v1/admin%s = %d %s, want 403 forbidden", c.name, e.method, e.path, st, er.Error.Code)
				}
			}
		}
	}
	for _, who := range []struct{ name, tok string }{{"no token", ""}, {"a disabled rep", w.Token(azOrg1, "gone", "rep")}} {
		want, code := 401, engine.CodeUnauthenticated
		if who.tok != "" {
			// A disabled user is refused the same way on every route.
			want, code = 403, engine.CodeUserDisabled
		}
		for _, e := range endpoints("rep-a", "T", "cA") {
			if st, er, _ := call(who.tok, e); st != want || er.Error.Code != code {
				m.t.Errorf("%s: %s /v1/admin%s = %d %s, want %d %s", who.name, e.method, e.path, st, er.Error.Code, want, code)
			}
		}
	}
	same("refused admin requests")

	// Admins on the other organisation's ids: not found (or, for a rep
	// named in an assignment, not a rep), exactly like ids of no one.
	for _, c := range []*azCaller{m.caller("adm"), m.caller("adm2")} {
		theirs := "only-" + c.other()
		for _, p := range []struct {
			path, body string
			status     int
			code       string
		}{
			{"/users/%s", "", 404, engine.CodeNotFound},
			{"/users/%s", `{"name":"pwned"}`, 404, engine.CodeNotFound},
			{"/users/%s/sessions", "", 404, engine.CodeNotFound},
			{"/users/%s/devices/phone-a", "", 404, engine.CodeNotFound},
			{"/teams/%s-team", `{"name":"pwned"}`, 404, engine.CodeNotFound},
			{"/customers/%s-c/assign", `{"reps":["rep-a"]}`, 404, engine.CodeNotFound},
			{"/customers/shared-c/assign", `{"reps":["%s"]}`, 400, "unknown_rep"},
		} {
			method := map[bool]string{true: "GET", false: "PATCH"}[p.body == ""]
			switch {
			case strings.Contains(p.path, "/devices/"):
				method = "DELETE"
			case strings.Contains(p.path, "/assign"):
				method = "POST"
			}
			fill := func(id string) ep {
				if strings.Contains(p.body, "%s") {
					return ep{method, p.path, fmt.Sprintf(p.body, id)}
				}
				return ep{method, fmt.Sprintf(p.path, id), p.body}
			}
			e, nobody := fill(theirs), fill("nobody")
			st, er, _ := call(c.tok, e)
			st2, er2, _ := call(c.tok, nobody)
			if st != p.status || er.Error.Code != p.code {
				m.t.Errorf("%s: %s /v1/admin%s %s = %d %s, want %d %s", c.name, e.method, e.path, e.body, st, er.Error.Code, p.status, p.code)
			}
			er.Error.RequestID, er2.Error.RequestID = "", ""
			a := strings.ReplaceAll(fmt.Sprint(er.Error), theirs, "<id>")
			b := strings.ReplaceAll(fmt.Sprint(er2.Error), "nobody", "<id>")
			if st != st2 || a != b {
				m.t.Errorf("%s: %s /v1/admin%s %s: another organisation's id answers %d %s, an id of no one %d %s",
					c.name, e.method, e.path, e.body, st, a, st2, b)
			}
		}
	}
	same("admin requests for another organisation's ids")

	// The same ids in both organisations: each admin changes its own
	// organisation's only.
	adm, adm2 := m.caller("adm"), m.caller("adm2")
	var u userBody
	if st, _, raw := call(adm2.tok, ep{"PATCH", "/users/rep-a", `{"name":"Renamed in org-2"}`}); st != 200 || json.Unmarshal(raw, &u) != nil ||
		u.Name != "Renamed in org-2" || u.Email != "rep-a@org-2.example" {
		m.t.Errorf("org-2 admin: PATCH /users/rep-a = %d %s", st, raw)
	}
	var rv struct {
		Revoked int `json:"revoked"`
	}
	if st, _, raw := call(adm2.tok, ep{"DELETE", "/users/rep-a/devices/phone-a", ""}); st != 200 || json.Unmarshal(raw, &rv) != nil || rv.Revoked != 0 {
		m.t.Errorf("org-2 admin: revoke rep-a's phone-a = %d %s, want 200 and nothing revoked (org-2's rep-a has no session)", st, raw)
	}
	if st, _, raw := call(adm2.tok, ep{"POST", "/customers/shared-c/assign", `{"reps":["rep-b"]}`}); st != 200 || !strings.Contains(string(raw), `"changed":true`) {
		m.t.Errorf("org-2 admin: assign shared-c = %d %s", st, raw)
	}
	before[azOrg2] = snapshot(azOrg2)
	var ch map[string]accChange
	ch, m.cp[azOrg2], _ = w.Drain(adm2.tok, m.cp[azOrg2])
	if c, ok := ch["customers/shared-c"]; len(ch) != 1 || !ok || c.Version != 2 || !strings.Contains(string(c.Doc), `"rep-b"`) {
		m.t.Errorf("org-2's feed after its admin assigned shared-c: %v", ch)
	}
	same("org-2's admin acting on org-2's rep-a and shared-c")

	// Writing documents under ids that exist only in the other
	// organisation creates them here, like ids of no one.
	theirs := "only-" + azOrg2 + "-c"
	var res struct {
		Results []struct {
			ID      string `json:"id"`
			Change  string `json:"change"`
			Status  string `json:"status"`
			Version int64  `json:"version"`
		} `json:"results"`
	}
	body := `{"docs":[{"id":"` + theirs + `","fields":{"name":"org-1 guess"}},{"id":"c-of-no-one","fields":{"name":"org-1 new"}}]}`
	if st, _, raw := call(adm.tok, ep{"POST", "/documents/customers", body}); st != 200 || json.Unmarshal(raw, &res) != nil || len(res.Results) != 2 ||
		res.Results[0].Change != "created" || res.Results[1].Change != "created" || res.Results[0].Version != 1 {
		m.t.Errorf("admin: writing customers %s and c-of-no-one = %d %s, want both created", theirs, st, raw)
	}
	ch, m.cp[azOrg1], _ = w.Drain(adm.tok, m.cp[azOrg1])
	if got := accIDs(ch); !slices.Equal(got, []string{"customers/c-of-no-one", "customers/" + theirs}) {
		m.t.Errorf("org-1's feed after writing two customers: %v", got)
	}
	m.unchanged("org-1's admin writing under org-2's ids")

	// org-1's admin: allowed on its own users, teams and customers.
	for _, e := range endpoints("rep-a", "T", "shared-c") {
		switch e.method {
		case "POST":
			if e.path == "/users" {
				e.body = `{"id":"new-rep","email":"new-rep@org-1.example","roles":["rep"]}`
			}
		case "PATCH":
			e.body = `{"name":"Renamed in org-1"}`
		}
		if st, _, raw := call(adm.tok, e); st/100 != 2 || strings.Contains(string(raw), `"rejected"`) {
			m.t.Errorf("admin: %s /v1/admin%s = %d %s", e.method, e.path, st, raw)
		}
	}
	if st, _, raw := call(adm.tok, ep{"GET", "/users/rep-a/sessions", ""}); st != 200 || strings.Contains(string(raw), `"live":true`) {
		m.t.Errorf("admin: rep-a's sessions after revoking phone-a: %d %s", st, raw)
	}
	if now := snapshot(azOrg2); now != before[azOrg2] {
		m.t.Errorf("org-1's admin changed org-2's directory:\nbefore %s\nafter  %s", before[azOrg2], now)
	}
	if ch, _, _ := w.Drain(adm2.tok, m.cp[azOrg2]); len(ch) > 0 {
		m.t.Errorf("org-1's admin changed org-2's documents: %v", accIDs(ch))
	}
}
