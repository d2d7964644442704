package server_test

import (
	"testing"
)

// TestFollowUpsRefuseBadRequests: the follow-up queue checks its query,
// an action on a follow-up that does not exist (or is another
// organisation's) is not found, and the matrix is an admin's.
func TestFollowUpsRefuseBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rob := f.token(t, "acme", "rob", "rep")
	ann := f.token(t, "acme", "ann", "admin")
	f.check(t, []errorCase{
		{"no token", "GET", "/v1/followups", "", "", 401, "unauthenticated", ""},
		{"actionable not a boolean", "GET", "/v1/followups?actionable=maybe", rob, "", 400, "invalid_request", "/actionable"},
		{"limit out of range", "GET", "/v1/followups?limit=0", rob, "", 400, "limit_out_of_range", "/limit"},
		{"list", "GET", "/v1/followups", rob, "", 200, "", ""},
		{"claim a missing follow-up", "POST", "/v1/followups/fu-none/claim", rob, "", 404, "not_found", ""},
		{"action with an unknown field", "POST", "/v1/followups/fu-none/complete", rob, `{"why":"x"}`, 400, "invalid_request", "/why"},
		{"matrix as a rep", "GET", "/v1/admin/matrix", rob, "", 403, "forbidden", ""},
		{"matrix that is not JSON", "PUT", "/v1/admin/matrix", ann, `{"roles":`, 400, "invalid_matrix", ""},
		{"unknown action", "POST", "/v1/followups/fu-none/approve", rob, "", 404, "not_found", ""},
	})
}
