package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// streamStore is what the live stream (package stream) needs of a store,
// beyond sync.Store: every adapter provides it.
type streamStore interface {
	Head(ctx context.Context, org string) (int64, error)
	Changed(ctx context.Context, org string, after int64, maxKeys int) (engine.ChangeSet, error)
	Touch(ctx context.Context, ps []engine.Presence) error
	Renew(ctx context.Context, instance string, expires time.Time) (int, error)
	Leave(ctx context.Context, ps []engine.Presence, now time.Time) error
	Online(ctx context.Context, org, user string) ([]string, error)
}

func (f *fixture) streamStore() streamStore {
	ss, ok := f.store.(streamStore)
	if !ok {
		f.t.Fatalf("%T does not implement Head, Changed, Touch, Renew, Leave and Online (the live stream needs them)", f.store)
	}
	return ss
}

// maxKeys is the bound of the suite's Changed calls.
const maxKeys = 8

func (f *fixture) head(org string) int64 {
	f.t.Helper()
	h, err := f.streamStore().Head(f.ctx, org)
	if err != nil {
		f.t.Fatalf("Head(%s): %v", org, err)
	}
	return h
}

func (f *fixture) changed(org string, after int64) engine.ChangeSet {
	f.t.Helper()
	cs, err := f.streamStore().Changed(f.ctx, org, after, maxKeys)
	if err != nil {
		f.t.Fatalf("Changed(%s, %d): %v", org, after, err)
	}
	if cs.Head < after {
		f.t.Fatalf("Changed(%s, %d): head %d went back", org, after, cs.Head)
	}
	if !slices.IsSorted(cs.Keys) || len(slices.Compact(slices.Clone(cs.Keys))) != len(cs.Keys) {
		f.t.Errorf("Changed(%s, %d): keys %v are not sorted and distinct", org, after, cs.Keys)
	}
	return cs
}

// testChanged: the change summary names exactly the scope keys written
// after a position (an eviction under the key it leaves), its head is the
// position a pull of everything reaches, and organisations are separate.
func testChanged(f *fixture) {
	t := f.t
	idle := f.changed(org, f.head(org))
	if len(idle.Keys) != 0 || idle.All {
		t.Fatalf("nothing was written after the head, Changed says %+v", idle)
	}
	if h := f.head(org); h != idle.Head {
		t.Errorf("Head %d, Changed's head %d", h, idle.Head)
	}
	otherHead := f.head(otherOrg) // positions are per organisation on some stores
	wantOutcome(t, f.push(f.eng, rep1, devA, createNote("m-1", "n-1", "first"))[0], "m-1", engine.StatusApplied, 1)
	cs := f.changed(org, idle.Head)
	want := []string{fieldsales.ScopeOrg, fieldsales.CustomerScope(cust1), fieldsales.UserScope(rep1.User)}
	slices.Sort(want)
	if !slices.Equal(cs.Keys, want) || cs.All {
		t.Errorf("after rep1's note: keys %v (all %v), want %v", cs.Keys, cs.All, want)
	}
	// The head is where a pull of the whole organisation ends.
	_, last := f.storePullAll(engine.PullQuery{Org: org, Scopes: []string{fieldsales.ScopeOrg}, After: idle.Head, Limit: 100, MaxBytes: 1 << 20})
	if cs.Head != last {
		t.Errorf("head %d, but a pull of everything ends at %d", cs.Head, last)
	}
	if h := f.head(org); h != cs.Head {
		t.Errorf("Head %d, Changed's head %d", h, cs.Head)
	}
	if other := f.changed(otherOrg, otherHead); len(other.Keys) != 0 {
		t.Errorf("the other organisation's summary shows %v", other.Keys)
	}
	if again := f.changed(org, cs.Head); len(again.Keys) != 0 || again.Head != cs.Head {
		t.Errorf("nothing after the head, Changed says %+v (head was %d)", again, cs.Head)
	}

	// Reassigning c-2 from rep2 to rep1: rep2's key is named (its rep must
	// pull the evictions), and so is rep1's.
	wantOutcome(t, f.push(f.eng, admin, devA, update("m-2", customers, cust2, 1,
		map[string]any{"assigned_reps": []string{rep1.User}}))[0], "m-2", engine.StatusApplied, 2)
	moved := f.changed(org, cs.Head)
	for _, k := range []string{fieldsales.UserScope(rep1.User), fieldsales.UserScope(rep2.User), fieldsales.CustomerScope(cust2)} {
		if _, ok := slices.BinarySearch(moved.Keys, k); !ok {
			t.Errorf("after the reassignment keys %v lack %s", moved.Keys, k)
		}
	}
	if moved.Head <= cs.Head {
		t.Errorf("head did not move: %d after %d", moved.Head, cs.Head)
	}
	// The twin organisation's writes never show up in org's keys.
	twin := twinOf(rep2)
	wantOutcome(t, f.push(f.eng, twin, devB, createNoteOn("m-1", "n-9", cust2, "elsewhere"))[0], "m-1", engine.StatusApplied, 1)
	if mine := f.changed(org, moved.Head); len(mine.Keys) != 0 {
		t.Errorf("org's summary after the other org's write: %v", mine.Keys)
	}
	if theirs := f.changed(otherOrg, otherHead); !slices.Contains(theirs.Keys, fieldsales.UserScope(rep2.User)) {
		t.Errorf("the other org's summary lacks its rep: %v", theirs.Keys)
	}

	// More keys than the caller wants: it says all.
	before := moved.Head
	var docs []engine.UpsertDoc
	for i := range maxKeys {
		docs = append(docs, engine.UpsertDoc{Collection: customers, ID: fmt.Sprintf("many-%d", i), Fields: map[string]json.RawMessage{
			"name": mustJSON("Many"), "assigned_reps": mustJSON([]string{fmt.Sprintf("u-many-%d", i)})}})
	}
	if _, err := f.eng.Upsert(f.ctx, admin, "fixture", docs); err != nil {
		t.Fatalf("upsert: %v", err)
	}
	if all := f.changed(org, before); !all.All || all.Keys != nil {
		t.Errorf("after %d keys changed: all %v, %d keys", 2*maxKeys+1, all.All, len(all.Keys))
	}
}

// testPresence: a device counts as online while any instance holds an
// unexpired record of it, per user and organisation.
func testPresence(f *fixture) {
	t := f.t
	ss := f.streamStore()
	now := time.Now()
	rec := func(o, u, d, inst string, exp time.Time) engine.Presence {
		return engine.Presence{Org: o, User: u, Device: d, Instance: inst, Expires: exp}
	}
	online := func(o, u string, want ...string) {
		t.Helper()
		got, err := ss.Online(f.ctx, o, u)
		if err != nil {
			t.Fatalf("Online: %v", err)
		}
		if len(got) != len(want) || (len(want) > 0 && !slices.Equal(got, want)) {
			t.Errorf("Online(%s, %s) = %v, want %v", o, u, got, want)
		}
	}
	online(org, rep1.User)
	if err := ss.Touch(f.ctx, []engine.Presence{
		rec(org, rep1.User, devA, "i-1", now.Add(time.Hour)),
		rec(org, rep1.User, devA, "i-2", now.Add(time.Hour)),
		rec(org, rep1.User, devB, "i-2", now.Add(time.Hour)),
		rec(org, rep1.User, "dev-stale", "i-1", now.Add(-time.Minute)),
		rec(org, rep2.User, devB, "i-1", now.Add(time.Hour)),
	}); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	online(org, rep1.User, devA, devB)
	online(org, rep2.User, devB)
	online(otherOrg, rep1.User)
	// Renewing a record that had expired brings the device back.
	if err := ss.Touch(f.ctx, []engine.Presence{rec(org, rep1.User, "dev-stale", "i-1", now.Add(time.Hour))}); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	online(org, rep1.User, devA, devB, "dev-stale")
	// devA leaves instance 1 but still streams from instance 2.
	if err := ss.Leave(f.ctx, []engine.Presence{rec(org, rep1.User, devA, "i-1", time.Time{})}, now); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	online(org, rep1.User, devA, devB, "dev-stale")
	if err := ss.Leave(f.ctx, []engine.Presence{rec(org, rep1.User, devA, "i-2", time.Time{}), rec(org, rep1.User, "dev-stale", "i-1", time.Time{})}, now); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	online(org, rep1.User, devB)
	online(org, rep2.User, devB)

	// Renewing an instance's records moves all of them and only them:
	// instance i-1 holds rep2's devB; after its records expire, devB of
	// rep1 (on i-2) is still online until i-2's expire too.
	if n, err := ss.Renew(f.ctx, "i-1", now.Add(-time.Second)); err != nil || n != 1 {
		t.Fatalf("Renew(i-1) = %d, %v; want 1 record", n, err)
	}
	online(org, rep2.User)
	online(org, rep1.User, devB)
	if n, err := ss.Renew(f.ctx, "i-1", now.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("Renew(i-1) = %d, %v; want 1 record", n, err)
	}
	online(org, rep2.User, devB)
	if n, err := ss.Renew(f.ctx, "i-none", now.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("Renew of an instance without records = %d, %v", n, err)
	}
}
