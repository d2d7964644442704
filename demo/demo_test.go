package demo

import (
	"bytes"
	"context"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPeopleHoldEveryMatrixRole: every role the default matrix names holds
// a demo user, so a follow-up, and its escalation, reaches someone.
func TestPeopleHoldEveryMatrixRole(t *testing.T) {
	t.Parallel()
	_, users := People("demo")
	held := map[string]bool{}
	for _, u := range users {
		for _, r := range u.Roles {
			held[r] = true
		}
	}
	m := defaultMatrix()
	named := slices.Clone(m.Roles)
	for _, a := range m.Activities {
		named = append(append(append(named, a.Responsible, a.Accountable), a.Consulted...), a.Informed...)
	}
	for _, r := range named {
		if !held[r] {
			t.Errorf("the default matrix names role %q, which no demo user holds", r)
		}
	}
}

// TestLoadIsRepeatable loads the smallest demo into a fresh store: a second
// load changes nothing and says so, serve's load (ifMissing) leaves it
// alone, and another shape on the same organisation is refused before
// anything is written.
func TestLoadIsRepeatable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	o := Options{Data: t.TempDir(), Org: "demo", Seed: 1, Days: 1, Customers: 8}
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	res, err := Load(ctx, o, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	if !res.fresh || !res.changed() || sum(res.orders) == 0 && sum(res.visits) == 0 {
		t.Fatalf("first load: fresh %v, changed %v, %d orders, %d visits", res.fresh, res.changed(), sum(res.orders), sum(res.visits))
	}
	var out bytes.Buffer
	res.Print(&out, "http://127.0.0.1:8080", "")
	if !strings.Contains(out.String(), `Loaded demo organisation "demo"`) || !strings.Contains(out.String(), Password) {
		t.Errorf("first load printed:\n%s", out.String())
	}

	again, err := Load(ctx, o, io.Discard, false)
	if err != nil || again.changed() {
		t.Fatalf("second load: %v, changed %v (%d changes)", err, again != nil && again.changed(), again.changes)
	}
	kept, err := Load(ctx, Options{Data: o.Data, Org: "demo", Seed: 1, Days: 30, Customers: 300}, io.Discard, true)
	if err != nil || !kept.skippedLoad || kept.opts.Days != 1 {
		t.Fatalf("serve's load of a loaded demo: %v %+v", err, kept)
	}
	o.Days = 2
	if _, err := Load(ctx, o, io.Discard, false); err == nil || !strings.Contains(err.Error(), "holds the demo of --seed 1 --days 1 --customers 8") {
		t.Errorf("another shape on the same organisation: %v", err)
	}
	if err := (Options{Org: "demo", Days: 0, Customers: 8}).Check(); err == nil {
		t.Error("--days 0 passed the check")
	}
}

// TestLoadAtAnchor: an anchor replays one demo exactly, whenever and
// wherever it is loaded (the console tests print theirs when they fail),
// its plans start on the anchor's day, and an anchor in the future is
// refused.
func TestLoadAtAnchor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A Monday just after midnight in Berlin: the last working day is the
	// Friday before.
	at := time.Date(2026, 11, 29, 23, 30, 0, 0, time.UTC)
	var runs []*Result
	for range 2 {
		o := Options{Data: t.TempDir(), Org: "demo", Seed: 1, Days: 3, Customers: 8, Anchor: at}
		res, err := Load(ctx, o, io.Discard, false)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, res)
	}
	a, b := runs[0], runs[1]
	if !slices.Equal(a.w.planIDs, b.w.planIDs) || !slices.Equal(a.w.orderIDs, b.w.orderIDs) ||
		!maps.Equal(a.fups, b.fups) || !maps.Equal(a.orders, b.orders) || !maps.Equal(a.visits, b.visits) {
		t.Fatalf("two loads at one anchor differ: plans %d/%d, orders %v/%v, follow-ups %v/%v",
			len(a.w.planIDs), len(b.w.planIDs), a.orders, b.orders, a.fups, b.fups)
	}
	// Visits and their plans on Friday, the plans pushed that evening for
	// Monday on; nothing on the weekend, no order after Friday.
	on := func(ids []string, day string) bool {
		return slices.ContainsFunc(ids, func(id string) bool { return strings.Contains(id, "-"+day+"-") })
	}
	if !on(a.w.planIDs, "20261127") || !on(a.w.planIDs, "20261130") || on(a.w.planIDs, "20261128") || on(a.w.planIDs, "20261129") {
		t.Errorf("plans %q, want Friday's and Monday's, none on the weekend", a.w.planIDs)
	}
	if !on(a.w.orderIDs, "20261127") || on(a.w.orderIDs, "20261130") || on(a.w.orderIDs, "20261128") || on(a.w.orderIDs, "20261129") {
		t.Errorf("orders %q, want Friday's only", a.w.orderIDs)
	}
	future := Options{Data: t.TempDir(), Org: "demo", Seed: 1, Days: 3, Customers: 8, Anchor: time.Now().Add(time.Hour)}
	if _, err := Load(ctx, future, io.Discard, false); err == nil || !strings.Contains(err.Error(), "future") {
		t.Errorf("an anchor an hour ahead: %v", err)
	}
}
