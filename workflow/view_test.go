package workflow_test

import (
	"testing"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// A follow-up page and an order page read through the same visibility as
// Act: the holder of the responsible role sees the follow-up, its order and
// the whole chain; another role, and another organisation, get not found.
func TestFollowUpAndOrderViews(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.submit(t, "o-1")
	desk := engine.Actor{Org: org, User: "desk", Roles: []string{"order_desk"}}
	det, err := r.wf.FollowUp(t.Context(), desk, "fu-o-1-erp_entry")
	if err != nil {
		t.Fatal(err)
	}
	if det.Item.Actionable || len(det.Item.WaitingOn) != 1 || det.Item.WaitingOn[0] != "fu-o-1-availability_check" {
		t.Errorf("erp_entry: actionable %v waiting on %v, want waiting on the availability check", det.Item.Actionable, det.Item.WaitingOn)
	}
	if det.Order == nil || det.Order.ID != "o-1" {
		t.Fatalf("erp_entry's order: %+v", det.Order)
	}
	var steps []string
	for _, s := range det.Chain {
		steps = append(steps, s.Activity+":"+s.Status)
	}
	if len(det.Chain) < 2 || det.Chain[0].Activity != "availability_check" || det.Chain[1].Activity != "erp_entry" {
		t.Errorf("chain %v, want the matrix's order from availability_check, erp_entry", steps)
	}
	if _, err := r.wf.Order(t.Context(), desk, "o-1"); err != nil {
		t.Errorf("the order desk reads the order of its follow-up: %v", err)
	}

	for name, a := range map[string]engine.Actor{
		"a role off the chain": {Org: org, User: "cc", Roles: []string{"credit_control"}},
		"another organisation": {Org: "globex", User: "desk", Roles: []string{"order_desk"}},
	} {
		if _, err := r.wf.FollowUp(t.Context(), a, "fu-o-1-erp_entry"); engine.ErrorKind(err) != engine.KindNotFound {
			t.Errorf("%s reads the follow-up: %v, want not found", name, err)
		}
		if _, err := r.wf.Order(t.Context(), a, "o-1"); engine.ErrorKind(err) != engine.KindNotFound {
			t.Errorf("%s reads the order: %v, want not found", name, err)
		}
		if got, err := r.wf.Customers(t.Context(), a, []string{"c-1"}); err != nil || len(got) != 0 {
			t.Errorf("%s reads the customer: %v %v, want nothing", name, got, err)
		}
	}
	if got, err := r.wf.Customers(t.Context(), desk, []string{"c-1"}); err != nil || len(got) != 1 {
		t.Errorf("the order desk reads its order's customer: %v %v", got, err)
	}
}
