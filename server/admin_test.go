package server_test

import (
	"testing"
)

// TestAdminRefusesBadRequests: the admin API answers only admins, refuses
// bad users, teams and organisation changes at their field, and shows
// another organisation's ids exactly like missing ones.
func TestAdminRefusesBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ann := f.token(t, "acme", "ann", "admin")
	rob := f.token(t, "acme", "rob", "rep")
	oz := f.token(t, "other", "oz", "admin")
	f.check(t, []errorCase{{"import a customer", "POST", "/v1/admin/documents/customers", ann,
		`{"docs":[{"id":"c-1","fields":{"name":"Customer c-1","assigned_reps":["rob"]}}]}`, 200, "", ""}})
	before := f.head(t, "acme")
	f.check(t, []errorCase{
		{"no token", "GET", "/v1/admin/users", "", "", 401, "unauthenticated", ""},
		{"a rep", "GET", "/v1/admin/users", rob, "", 403, "forbidden", ""},
		{"list limit out of range", "GET", "/v1/admin/users?limit=0", ann, "", 400, "limit_out_of_range", "/limit"},
		{"user with a bad email", "POST", "/v1/admin/users", ann, `{"email":"not-an-email","roles":["rep"]}`, 400, "invalid_email", "/email"},
		{"user with an unknown role", "POST", "/v1/admin/users", ann, `{"email":"x@acme.example","roles":["pilot"]}`, 400, "unknown_role", "/roles/0"},
		{"user with an unknown field", "POST", "/v1/admin/users", ann, `{"email":"x@acme.example","roles":["rep"],"admin":true}`, 400, "invalid_request", "/admin"},
		{"email taken", "POST", "/v1/admin/users", ann, `{"email":"rob@acme.example","roles":["rep"]}`, 409, "email_taken", "/email"},
		{"password too short", "PATCH", "/v1/admin/users/rob", ann, `{"password":"short"}`, 400, "password_too_short", "/password"},
		{"missing user", "GET", "/v1/admin/users/nobody", ann, "", 404, "not_found", ""},
		{"another organisation's user", "GET", "/v1/admin/users/rob", oz, "", 404, "not_found", ""},
		{"disable another organisation's user", "POST", "/v1/admin/users/rob/disable", oz, "", 404, "not_found", ""},
		{"sessions of another organisation's user", "GET", "/v1/admin/users/rob/sessions", oz, "", 404, "not_found", ""},
		{"team without name", "POST", "/v1/admin/teams", ann, `{"id":"north"}`, 400, "invalid_request", "/name"},
		{"rename a missing team", "PATCH", "/v1/admin/teams/south", ann, `{"name":"South"}`, 404, "not_found", ""},
		{"unknown time zone", "PUT", "/v1/admin/org", ann, `{"time_zone":"Mars/Olympus"}`, 400, "unknown_time_zone", "/time_zone"},
		{"assign without reps", "POST", "/v1/admin/customers/c-1/assign", ann, `{}`, 400, "invalid_request", "/reps"},
		{"assign a missing customer", "POST", "/v1/admin/customers/c-2/assign", ann, `{"reps":["rob"]}`, 404, "not_found", ""},
		{"assign another organisation's customer", "POST", "/v1/admin/customers/c-1/assign", oz, `{"reps":["oz"]}`, 404, "not_found", ""},
		{"assign to someone who is not a rep", "POST", "/v1/admin/customers/c-1/assign", ann, `{"reps":["ann"]}`, 400, "unknown_rep", "/reps/0"},
		{"import into a collection that is not importable", "POST", "/v1/admin/documents/customer_notes", ann, `{"docs":[]}`, 400, "unknown_collection", ""},
	})
	if after := f.head(t, "acme"); after != before {
		t.Errorf("the refused requests moved acme's feed from %d to %d", before, after)
	}
}
