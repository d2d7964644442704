package server_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestSyncRefusesBadRequests: push and pull refuse each bad request whole
// with its status, code and pointer, and store nothing.
func TestSyncRefusesBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rob := f.token(t, "acme", "rob", "rep")
	note := `{"mutation_id":"m-%d","collection":"customer_notes","id":"n-%d","op":"create","doc":{"customer_id":"c-1","text":"hi","created_at":"2026-11-29T09:00:00Z"}}`
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, fmt.Sprintf(note, i, i))
	}
	one := `{"device_id":"d-1","mutations":[` + fmt.Sprintf(note, 1, 1) + `]}`
	before := f.head(t, "acme")
	f.check(t, []errorCase{
		{"push without token", "POST", "/v1/sync/push", "", one, 401, "unauthenticated", ""},
		{"push with a garbage token", "POST", "/v1/sync/push", "x.y.z", one, 401, "token_invalid", ""},
		{"push cut short", "POST", "/v1/sync/push", rob, `{"device_id":"d-1","mutations":[`, 400, "malformed_json", ""},
		{"mutations not a list", "POST", "/v1/sync/push", rob, `{"device_id":"d-1","mutations":{}}`, 400, "malformed_json", "/mutations"},
		{"push without mutations", "POST", "/v1/sync/push", rob, `{"device_id":"d-1"}`, 400, "invalid_request", "/mutations"},
		{"push without device", "POST", "/v1/sync/push", rob, `{"mutations":[` + fmt.Sprintf(note, 1, 1) + `]}`, 400, "invalid_request", "/device_id"},
		{"more mutations than the limit", "POST", "/v1/sync/push", rob, `{"device_id":"d-1","mutations":[` + strings.Join(eleven, ",") + `]}`, 413, "too_many_mutations", "/mutations"},
		{"pull without token", "GET", "/v1/sync/pull", "", "", 401, "unauthenticated", ""},
		{"pull page too large", "GET", "/v1/sync/pull?limit=100000", rob, "", 400, "limit_out_of_range", "/limit"},
		{"pull limit not a number", "GET", "/v1/sync/pull?limit=ten", rob, "", 400, "limit_out_of_range", "/limit"},
		{"pull from a forged checkpoint", "GET", "/v1/sync/pull?checkpoint=bm90LWEtY2hlY2twb2ludA", rob, "", 400, "bad_checkpoint", "/checkpoint"},
	})
	if after := f.head(t, "acme"); after != before {
		t.Errorf("the refused requests moved acme's feed from %d to %d", before, after)
	}
}
