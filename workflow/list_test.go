package workflow_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// TestListDefaultsToCallersRolesAndSplitsActionable: a queue read without a
// role lists every queue the caller holds; each follow-up says whether it
// can be worked now or waits on a dependency, and either half can be asked
// for alone. An admin names the queue.
func TestListDefaultsToCallersRolesAndSplitsActionable(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.submit(t, "o-1")
	desk := engine.Actor{Org: org, User: "desk", Roles: []string{"demand_planning", "order_desk"}}
	check := func(q workflow.ListQuery, want map[string][]string) {
		t.Helper()
		page, err := r.wf.List(t.Context(), desk, q)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for _, it := range page.FollowUps {
			if it.Actionable != (len(it.WaitingOn) == 0) {
				t.Errorf("%s: actionable %v but waiting on %v", it.ID, it.Actionable, it.WaitingOn)
			}
			got[it.ID] = it.WaitingOn
		}
		if len(got) != len(want) {
			t.Fatalf("%+v: got %v, want %v", q, got, want)
		}
		for id, w := range want {
			if g, ok := got[id]; !ok || !slices.Equal(g, w) {
				t.Errorf("%+v: %s waits on %v, want %v (present %v)", q, id, g, w, ok)
			}
		}
	}
	yes, no := true, false
	check(workflow.ListQuery{}, map[string][]string{
		"fu-o-1-availability_check": nil, "fu-o-1-erp_entry": {"fu-o-1-availability_check"}})
	check(workflow.ListQuery{Actionable: &yes}, map[string][]string{"fu-o-1-availability_check": nil})
	check(workflow.ListQuery{Actionable: &no}, map[string][]string{"fu-o-1-erp_entry": {"fu-o-1-availability_check"}})
	check(workflow.ListQuery{Role: "order_desk"}, map[string][]string{"fu-o-1-erp_entry": {"fu-o-1-availability_check"}})
	// The waiting view (open, not actionable) reads the waiting index.
	check(workflow.ListQuery{Actionable: &no, Status: workflow.FUOpen}, map[string][]string{"fu-o-1-erp_entry": {"fu-o-1-availability_check"}})

	if _, err := r.wf.Act(t.Context(), desk, "fu-o-1-availability_check", workflow.Action{Kind: workflow.ActComplete, Note: "in stock"}); err != nil {
		t.Fatal(err)
	}
	check(workflow.ListQuery{Actionable: &yes}, map[string][]string{"fu-o-1-erp_entry": nil})
	// Its dependency done, erp_entry's clock started: it left the waiting
	// index, and the waiting view is empty.
	check(workflow.ListQuery{Actionable: &no, Status: workflow.FUOpen}, map[string][]string{})
	if d, _ := r.doc(t, "follow_ups", "fu-o-1-erp_entry"); slices.Contains(d.Scopes, fieldsales.WaitingIndexKey("order_desk")) {
		t.Errorf("erp_entry is still in the waiting index: %v", d.Scopes)
	}

	if _, err := r.wf.List(t.Context(), admin, workflow.ListQuery{}); engine.ErrorKind(err) != engine.KindInvalid {
		t.Errorf("an admin without a role: %v, want invalid", err)
	}
	if _, err := r.wf.List(t.Context(), desk, workflow.ListQuery{Role: "billing"}); engine.ErrorKind(err) != engine.KindForbidden {
		t.Errorf("another role's queue: %v, want forbidden", err)
	}
}

// TestListMatchFiltersBeforePaging: a caller's own filter (Match) applies
// to the whole queue, not to one page of it: asked for one follow-up at a
// time, the listing skips what the filter refuses and finds the one it
// keeps, however far down the queue.
func TestListMatchFiltersBeforePaging(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	for _, o := range []string{"o-1", "o-2", "o-3"} {
		r.submit(t, o)
	}
	planner := engine.Actor{Org: org, User: "dp-1", Roles: []string{"demand_planning"}}
	asked := 0
	only := func(ctx context.Context, docs []json.RawMessage) ([]bool, error) {
		keep := make([]bool, len(docs))
		for i, d := range docs {
			asked++
			var f struct {
				Order string `json:"order_id"`
			}
			json.Unmarshal(d, &f)
			keep[i] = f.Order == "o-3"
		}
		return keep, nil
	}
	page, err := r.wf.List(t.Context(), planner, workflow.ListQuery{Role: "demand_planning", Limit: 1, Match: only})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.FollowUps) != 1 || page.FollowUps[0].ID != "fu-o-3-availability_check" {
		t.Fatalf("page %+v; want o-3's availability check", page.FollowUps)
	}
	if asked < 3 {
		t.Errorf("the filter saw %d follow-ups; want every one before o-3's", asked)
	}
	// The next page: nothing else matches.
	next, err := r.wf.List(t.Context(), planner, workflow.ListQuery{Role: "demand_planning", Limit: 1, Match: only, After: page.Next})
	if err != nil || len(next.FollowUps) != 0 {
		t.Fatalf("next page %+v, %v; want none", next.FollowUps, err)
	}
}
