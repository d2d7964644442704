package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/csvimport"
	"github.com/fieldsync/fieldsync/internal/apptest"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fieldsync runs the command in-process, as main would.
func fieldsync(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// writeCSV writes lines to a file of the test and returns its path.
func writeCSV(t *testing.T, name string, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// addRep creates an enabled user of org holding roles (rep by default).
func addRep(t *testing.T, ts *apptest.Server, org, id string, roles ...string) {
	t.Helper()
	if len(roles) == 0 {
		roles = []string{"rep"}
	}
	apptest.AdminAdd(t, ts.URL, ts.Token(t, org, "operator", "admin"), map[string]any{"id": id, "email": id + "@" + org + ".example", "roles": roles})
}

// changesSince pulls one page for token after cp and returns its changes as
// "op collection/id".
func changesSince(t *testing.T, ts *apptest.Server, token, cp string) []string {
	t.Helper()
	var r apptest.PullReply
	if st := apptest.Do(t, "GET", ts.URL+"/v1/sync/pull?limit=1000&checkpoint="+url.QueryEscape(cp), token, nil, &r); st != 200 {
		t.Fatalf("pull: status %d", st)
	}
	if r.HasMore {
		t.Fatalf("pull: more than one page of changes")
	}
	out := []string{}
	for _, c := range r.Changes {
		out = append(out, c.Op+" "+c.Collection+"/"+c.ID)
	}
	slices.Sort(out)
	return out
}

// customerRows builds a customers file of n rows; edit changes row i's
// cells before it is written.
func customerRows(n int, edit func(i int, cells map[string]string)) []string {
	cols := []string{"id", "name", "code", "segment", "address_line1", "city", "country", "lat", "lon", "assigned_reps"}
	lines := []string{strings.Join(cols, ",")}
	for i := 1; i <= n; i++ {
		reps := []string{"rep-a", "rep-b", "rep-a;rep-b"}[i%3]
		cells := map[string]string{"id": fmt.Sprintf("c-%02d", i), "name": fmt.Sprintf("Customer %d", i),
			"code": fmt.Sprintf("ERP-%04d", i), "segment": "OEM", "address_line1": fmt.Sprintf("Hauptstr. %d", i),
			"city": "Munich", "country": "DE", "lat": fmt.Sprintf("48.%02d", i), "lon": "11.58", "assigned_reps": reps}
		if edit != nil {
			edit(i, cells)
		}
		var row []string
		for _, c := range cols {
			row = append(row, cells[c])
		}
		lines = append(lines, strings.Join(row, ","))
	}
	return lines
}

// TestImportCustomers imports 50 customers, 3 of them bad, in batches of 20:
// the bad rows are reported by line (a local parse error, a schema
// rejection, an unknown rep), the good ones reach their reps; the same file
// again changes nothing and adds nothing to any feed.
func TestImportCustomers(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, "", nil)
	for _, r := range []string{"rep-a", "rep-b"} {
		addRep(t, ts, "acme", r)
	}
	bad := func(i int, cells map[string]string) {
		switch i {
		case 12:
			cells["lat"] = "north"
		case 25:
			cells["name"] = ""
		case 37:
			cells["assigned_reps"] = "rep-a;ghost"
		}
	}
	file := writeCSV(t, "customers.csv", customerRows(50, bad))
	auth := []string{"--server", ts.URL, "--data", ts.Data, "--org", "acme"}
	args := append([]string{"import", "customers", file, "--batch", "20"}, auth...)

	code, out, errs := fieldsync(t, args...)
	wantErrors := `line 13: lat: invalid_number: "north" is not a number
line 26: name: schema_violation: missing required property "name"
line 38: assigned_reps: unknown_rep: no user "ghost" in this organisation
`
	if want := wantErrors + "50 rows: 47 created, 0 updated, 0 unchanged, 3 failed\n"; code != 1 || out != want {
		t.Fatalf("first import: exit %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, out, want, errs)
	}
	if !strings.Contains(errs, "fieldsync: 3 of 50 rows failed") || !strings.Contains(errs, "customers: 50/50 rows") {
		t.Errorf("first import: stderr %q", errs)
	}

	// Each rep pulls exactly the good customers assigned to them.
	repA, repB := ts.Token(t, "acme", "rep-a"), ts.Token(t, "acme", "rep-b")
	admin := ts.Token(t, "acme", "u-admin", "admin")
	cps := map[string]string{}
	for _, c := range []struct{ user, tok string }{{"rep-a", repA}, {"rep-b", repB}} {
		var want []string
		for i := 1; i <= 50; i++ {
			if i != 12 && i != 25 && i != 37 && strings.Contains([]string{"rep-a", "rep-b", "rep-a;rep-b"}[i%3], c.user) {
				want = append(want, fmt.Sprintf("customers/c-%02d", i))
			}
		}
		docs, cp := apptest.PullAll(t, ts.URL, c.tok, "", 100)
		if got := sortedMapKeys(docs); !slices.Equal(got, want) {
			t.Errorf("%s pulls %v, want %v", c.user, got, want)
		}
		cps[c.user] = cp
	}
	docs, cp := apptest.PullAll(t, ts.URL, admin, "", 100)
	cps["admin"] = cp
	wantC01 := `{"address":{"city":"Munich","country":"DE","line1":"Hauptstr. 1"},"assigned_reps":["rep-b"],"code":"ERP-0001",` +
		`"location":{"lat":48.01,"lng":11.58},"name":"Customer 1","segment":"OEM"}`
	if got := canonicalJSON(t, docs["customers/c-01"]); got != wantC01 {
		t.Errorf("customers/c-01 = %s\nwant %s", got, wantC01)
	}

	// The same file again: nothing changes, no feed moves.
	code, out, _ = fieldsync(t, args...)
	if want := wantErrors + "50 rows: 0 created, 0 updated, 47 unchanged, 3 failed\n"; code != 1 || out != want {
		t.Fatalf("second import: exit %d\n%s\nwant:\n%s", code, out, want)
	}
	for who, tok := range map[string]string{"rep-a": repA, "rep-b": repB, "admin": admin} {
		if got := changesSince(t, ts, tok, cps[who]); len(got) != 0 {
			t.Errorf("%s's feed after the second import: %v", who, got)
		}
	}

	// Fixed rows, one renamed and one moved to rep-b: counted exactly.
	fixed := writeCSV(t, "fixed.csv", customerRows(50, func(i int, cells map[string]string) {
		switch i {
		case 3:
			cells["name"] = "Customer Three"
		case 6:
			cells["assigned_reps"] = "rep-b"
		}
	}))
	code, out, errs = fieldsync(t, append([]string{"import", "customers", fixed}, auth...)...)
	if want := "50 rows: 3 created, 2 updated, 45 unchanged, 0 failed\n"; code != 0 || out != want {
		t.Fatalf("fixed import: exit %d\n%s\nwant %s\n%s", code, out, want, errs)
	}
	if got, want := changesSince(t, ts, repA, cps["rep-a"]), []string{"evict customers/c-06", "put customers/c-03",
		"put customers/c-12"}; !slices.Equal(got, want) {
		t.Errorf("rep-a after the fixed import: %v, want %v", got, want)
	}
}

// canonicalJSON re-encodes raw with sorted keys.
func canonicalJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func sortedMapKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// TestImportProducts imports the catalogue: every user of the organisation
// pulls it, whatever their role; another organisation does not.
func TestImportProducts(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, "", nil)
	file := writeCSV(t, "products.csv", []string{
		"sku,id,name,category,unit,list_price,currency,active",
		"M-100,p-1,Motor 1.5 kW,motors,pc,312.5,EUR,true",
		"M-200,p-2,Motor 3 kW,motors,pc,\"1,2\",EUR,yes",
		"S-10,p-3,Switch,switchgear,pc,12,EUR,maybe",
		"C-1,p-4,Cable,cables,m,1.25,EUR,no",
		"X-1,p-5,Widget,misc,pc,3,euro,true",
		"X-2,p-6,Gadget,misc,pc,3,EUR",
		"",
		",,,,,,,",
		"X-3,,Nothing,misc,pc,3,EUR,true",
	})
	code, out, errs := fieldsync(t, "import", "products", file, "--server", ts.URL, "--token", ts.Token(t, "acme", "boss", "admin"))
	want := `line 3: list_price: invalid_amount: "1,2" is not an amount: digits with an optional '.' and at most 4 decimals, e.g. "612.50"
line 4: active: invalid_boolean: "maybe" is not true or false
line 6: currency: schema_violation: ` // the schema's message follows
	if code != 1 || !strings.HasPrefix(out, want) || !strings.Contains(out, "\nline 7: row: column_count: 7 columns, the header has 8\n"+
		"line 10: id: missing_value: every row needs an id\n"+
		"7 rows: 2 created, 0 updated, 0 unchanged, 5 failed\n") {
		t.Fatalf("products import: exit %d\n%s\n%s", code, out, errs)
	}
	for _, tok := range []string{ts.Token(t, "acme", "anyone", "rep"), ts.Token(t, "acme", "mia", "manager"),
		ts.Token(t, "acme", "desk", "order_desk")} {
		docs, _ := apptest.PullAll(t, ts.URL, tok, "", 100)
		if got := sortedMapKeys(docs); !slices.Equal(got, []string{"products/p-1", "products/p-4"}) {
			t.Errorf("products pulled: %v", got)
		}
		if canonicalJSON(t, docs["products/p-4"]) != `{"active":false,"category":"cables","currency":"EUR","list_price":"1.25","name":"Cable","sku":"C-1","unit":"m"}` {
			t.Errorf("products/p-4 = %s", docs["products/p-4"])
		}
	}
	if docs, _ := apptest.PullAll(t, ts.URL, ts.Token(t, "other", "anyone", "rep"), "", 100); len(docs) != 0 {
		t.Errorf("another organisation pulls %v", sortedMapKeys(docs))
	}
}

// TestImportUsers creates and updates users from a file: unknown roles and
// teams are bad rows; the same file again changes nothing.
func TestImportUsers(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, "", nil)
	op := ts.Token(t, "acme", "operator", "admin")
	if st := apptest.Do(t, "POST", ts.URL+"/v1/admin/teams", op, apptest.MustJSON(t, map[string]string{"id": "north", "name": "North"}), nil); st != 201 {
		t.Fatalf("add team: %d", st)
	}
	apptest.AdminAdd(t, ts.URL, ts.Token(t, "acme", "operator", "admin"), map[string]any{"id": "pre", "email": "pre@acme.example", "name": "Pre", "roles": []string{"rep"}})
	file := writeCSV(t, "users.csv", []string{
		"id,email,name,roles,teams,leads",
		"ann,ann@acme.example,Ann,rep,north,",
		"bob,Bob@Acme.example,Bob,rep; order_desk,north,",
		"mia,mia@acme.example,Mia,manager,,north",
		"zed,zed@acme.example,Zed,pilot,,",
		"kim,kim@acme.example,Kim,rep,south,",
		",x@acme.example,X,rep,,",
		"pre,pre@acme.example,Pre Renamed,rep,,",
		"eve,eve@acme.example,Eve,rep,,north;south",
	})
	args := []string{"import", "users", file, "--server", ts.URL, "--data", ts.Data, "--org", "acme"}
	code, out, errs := fieldsync(t, args...)
	wantErrors := `line 5: roles: unknown_role: "pilot" is not a role of this organisation
line 6: teams: unknown_team: no team "south"
line 7: id: missing_value: every row needs an id
line 9: leads: unknown_team: no team "south"
`
	if want := wantErrors + "8 rows: 3 created, 1 updated, 0 unchanged, 4 failed\n"; code != 1 || out != want {
		t.Fatalf("users import: exit %d\n%s\nwant\n%s\n%s", code, out, want, errs)
	}
	if !strings.Contains(errs, "3 new user(s) have no password") {
		t.Errorf("stderr: %q", errs)
	}
	var bob client.User
	if st := apptest.Do(t, "GET", ts.URL+"/v1/admin/users/bob", op, nil, &bob); st != 200 || bob.Email != "bob@acme.example" ||
		!slices.Equal(bob.Roles, []string{"rep", "order_desk"}) || !slices.Equal(bob.Teams, []string{"north"}) || bob.HasPassword {
		t.Errorf("bob: %d %+v", st, bob)
	}
	var pre client.User
	if apptest.Do(t, "GET", ts.URL+"/v1/admin/users/pre", op, nil, &pre); pre.Name != "Pre Renamed" {
		t.Errorf("pre: %+v", pre)
	}
	code, out, _ = fieldsync(t, args...)
	if want := wantErrors + "8 rows: 0 created, 0 updated, 4 unchanged, 4 failed\n"; code != 1 || out != want {
		t.Fatalf("users import again: exit %d\n%s\nwant\n%s", code, out, want)
	}
	// --json for scripts.
	code, out, _ = fieldsync(t, append(args, "--json")...)
	var rep csvimport.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Unchanged != 4 || len(rep.Errors) != 4 ||
		rep.Errors[0] != (csvimport.RowError{Line: 5, Field: "roles", Code: "unknown_role", Message: `"pilot" is not a role of this organisation`}) {
		t.Errorf("--json: exit %d %s (%v)", code, out, err)
	}
}

// TestAssign moves a customer and its notes from rep A to rep B with
// "fieldsync assign": B's next pull brings both, A's evicts both; repeating
// it changes nothing; bad reps, missing customers and callers who are not
// admins of the organisation are refused and change nothing.
func TestAssign(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, "", nil)
	for _, r := range []string{"rep-a", "rep-b", "old"} {
		addRep(t, ts, "acme", r)
	}
	addRep(t, ts, "acme", "mgr", "manager")
	op := ts.Token(t, "acme", "operator", "admin")
	if st := apptest.Do(t, "POST", ts.URL+"/v1/admin/users/old/disable", op, nil, nil); st != 200 {
		t.Fatalf("disable: %d", st)
	}
	ts.Customer(t, "acme", "c-1", "rep-a")
	repA, repB := ts.Token(t, "acme", "rep-a"), ts.Token(t, "acme", "rep-b")
	var pr apptest.PushReply
	if st := apptest.Do(t, "POST", ts.URL+"/v1/sync/push", repA, apptest.MustJSON(t, apptest.Push("phone-a", apptest.Note("n-1", "Wants 40 motors"))), &pr); st != 200 ||
		pr.Results[0].Status != "applied" {
		t.Fatalf("rep-a's note: %d %+v", st, pr)
	}
	docsA, cpA := apptest.PullAll(t, ts.URL, repA, "", 100)
	docsB, cpB := apptest.PullAll(t, ts.URL, repB, "", 100)
	if len(docsA) != 2 || len(docsB) != 0 {
		t.Fatalf("before: rep-a holds %v, rep-b %v", sortedMapKeys(docsA), sortedMapKeys(docsB))
	}
	_, cpAdmin := apptest.PullAll(t, ts.URL, op, "", 100)

	auth := []string{"--server", ts.URL, "--data", ts.Data, "--org", "acme"}
	code, out, errs := fieldsync(t, append([]string{"assign", "--customer", "c-1", "--reps", "rep-b"}, auth...)...)
	if code != 0 || !strings.Contains(out, "c-1") || !strings.Contains(out, "rep-b") || !strings.Contains(out, "(assigned)") {
		t.Fatalf("assign: exit %d\n%s%s", code, out, errs)
	}
	if got, want := changesSince(t, ts, repB, cpB), []string{"put customer_notes/n-1", "put customers/c-1"}; !slices.Equal(got, want) {
		t.Errorf("rep-b after the assignment: %v, want %v", got, want)
	}
	if got, want := changesSince(t, ts, repA, cpA), []string{"evict customer_notes/n-1", "evict customers/c-1"}; !slices.Equal(got, want) {
		t.Errorf("rep-a after the assignment: %v, want %v", got, want)
	}
	_, cpAdmin = apptest.PullAll(t, ts.URL, op, cpAdmin, 100)

	// Again: unchanged, and no feed moves.
	code, out, _ = fieldsync(t, append([]string{"assign", "--customer", "c-1", "--reps", "rep-b", "--json"}, auth...)...)
	var reply struct {
		Reps    []string `json:"assigned_reps"`
		Changed bool     `json:"changed"`
	}
	if err := json.Unmarshal([]byte(out), &reply); err != nil || code != 0 || reply.Changed || !slices.Equal(reply.Reps, []string{"rep-b"}) {
		t.Errorf("assign again: exit %d %s", code, out)
	}

	// Refusals through the CLI: exit 1 with the server's code.
	for _, c := range []struct {
		customer, reps, want string
	}{
		{"c-1", "rep-a,ghost", `unknown_rep: no user "ghost" in this organisation (at /reps/1)`},
		{"c-1", "mgr", `unknown_rep: user "mgr" does not hold the role rep (at /reps/0)`},
		{"c-1", "old", `unknown_rep: user "old" is disabled (at /reps/0)`},
		{"c-1", "rep-a,rep-a", `unknown_rep: "rep-a" is listed twice (at /reps/1)`},
		{"c-404", "rep-a", `not_found: no customer "c-404"`},
	} {
		code, _, errs := fieldsync(t, append([]string{"assign", "--customer", c.customer, "--reps", c.reps}, auth...)...)
		if code != 1 || !strings.Contains(errs, c.want) {
			t.Errorf("assign %s to %s: exit %d %q, want %q", c.customer, c.reps, code, errs, c.want)
		}
	}
	if code, _, errs := fieldsync(t, append([]string{"assign", "--customer", "c-1"}, auth...)...); code != 2 || !strings.Contains(errs, "--reps") {
		t.Errorf("assign without --reps: exit %d %q", code, errs)
	}

	// Refusals over HTTP: who may call, and what another organisation sees.
	assignBody := apptest.MustJSON(t, map[string]any{"reps": []string{"rep-a"}})
	docsBody := apptest.MustJSON(t, map[string]any{"docs": []map[string]any{{"id": "c-1", "fields": map[string]any{"name": "Hijacked"}}}})
	for _, c := range []struct {
		name, method, path, token string
		body                      []byte
		status                    int
		code, pointer             string
	}{
		{"rep assigns", "POST", "/v1/admin/customers/c-1/assign", repA, assignBody, 403, "forbidden", ""},
		{"manager assigns", "POST", "/v1/admin/customers/c-1/assign", ts.Token(t, "acme", "mgr", "manager"), assignBody, 403, "forbidden", ""},
		{"rep writes", "POST", "/v1/admin/documents/customers", repA, docsBody, 403, "forbidden", ""},
		{"manager writes", "POST", "/v1/admin/documents/customers", ts.Token(t, "acme", "mgr", "manager"), docsBody, 403, "forbidden", ""},
		{"no token", "POST", "/v1/admin/documents/customers", "", docsBody, 401, "unauthenticated", ""},
		{"other org's admin assigns", "POST", "/v1/admin/customers/c-1/assign", ts.Token(t, "other", "boss", "admin"), assignBody, 404, "not_found", ""},
		{"reps missing", "POST", "/v1/admin/customers/c-1/assign", op, []byte(`{}`), 400, "invalid_request", "/reps"},
		{"unknown field", "POST", "/v1/admin/customers/c-1/assign", op, []byte(`{"reps":[],"force":true}`), 400, "invalid_request", "/force"},
		{"not importable", "POST", "/v1/admin/documents/customer_notes", op, docsBody, 400, "unknown_collection", ""},
		{"unknown document field", "POST", "/v1/admin/documents/customers", op, []byte(`{"docs":[{"id":"c-1","doc":{}}]}`), 400, "invalid_request", "/docs/0/doc"},
		{"docs missing", "POST", "/v1/admin/documents/customers", op, []byte(`{}`), 400, "invalid_request", "/docs"},
	} {
		var e apptest.ErrorReply
		st := apptest.Do(t, c.method, ts.URL+c.path, c.token, c.body, &e)
		if st != c.status || e.Error.Code != c.code || e.Error.Pointer != c.pointer {
			t.Errorf("%s: %d %+v, want %d %s %q", c.name, st, e.Error, c.status, c.code, c.pointer)
		}
	}
	// The other organisation's admin wrote into its own organisation only.
	other := ts.Token(t, "other", "boss", "admin")
	var res struct {
		Results []client.DocumentResult `json:"results"`
	}
	if st := apptest.Do(t, "POST", ts.URL+"/v1/admin/documents/customers", other, docsBody, &res); st != 200 || res.Results[0].Change != "created" {
		t.Errorf("other org's write: %d %+v", st, res)
	}
	if got := changesSince(t, ts, op, cpAdmin); len(got) != 0 {
		t.Errorf("acme's feed after the refusals: %v", got)
	}
	docsB, _ = apptest.PullAll(t, ts.URL, repB, "", 100)
	var c1 map[string]any
	if json.Unmarshal(docsB["customers/c-1"], &c1); c1["name"] != "Customer c-1" {
		t.Errorf("customers/c-1 = %s", docsB["customers/c-1"])
	}
}

// TestImportBatchLimit: a batch over the server's limit stops the import
// with the lines it covered; a smaller --batch gets through.
func TestImportBatchLimit(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, "", func(c *app.Config) { c.Limits.MaxMutations = 10 })
	addRep(t, ts, "acme", "rep-a")
	addRep(t, ts, "acme", "rep-b")
	file := writeCSV(t, "customers.csv", customerRows(25, nil))
	auth := []string{"--server", ts.URL, "--data", ts.Data, "--org", "acme"}
	code, out, errs := fieldsync(t, append([]string{"import", "customers", file}, auth...)...)
	if code != 1 || !strings.Contains(errs, "lines 2-26: too_many_mutations") || out != "25 rows: 0 created, 0 updated, 0 unchanged, 0 failed, 25 not imported\n" {
		t.Errorf("batch over the limit: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = fieldsync(t, append([]string{"import", "customers", file, "--batch", "10"}, auth...)...)
	if code != 0 || out != "25 rows: 25 created, 0 updated, 0 unchanged, 0 failed\n" {
		t.Errorf("--batch 10: exit %d\n%s%s", code, out, errs)
	}
}
