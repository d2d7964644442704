// Package pushtest is the contract suite every push.Store passes (sqlite
// and mongodb run it). It imports no adapter.
package pushtest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Harness is one fresh, empty store.
type Harness struct {
	Store push.Store
	// AddOrg creates an organisation in the identity directory of the
	// same database (Orgs lists those).
	AddOrg func(t *testing.T, id string)
	// Second, when set, opens another Store instance on the same database
	// (another server instance); claims must stay exclusive across them.
	Second func(t *testing.T) push.Store
}

// Run runs the contract suite; open returns a fresh store per subtest.
func Run(t *testing.T, open func(t *testing.T) Harness) {
	t.Run("Devices", func(t *testing.T) { t.Parallel(); testDevices(t, open(t)) })
	t.Run("Prefs", func(t *testing.T) { t.Parallel(); testPrefs(t, open(t)) })
	t.Run("Tail", func(t *testing.T) { t.Parallel(); testTail(t, open(t)) })
	t.Run("Outbox", func(t *testing.T) { t.Parallel(); testOutbox(t, open(t)) })
	t.Run("ConcurrentClaims", func(t *testing.T) { t.Parallel(); testConcurrentClaims(t, open(t)) })
}

var t0 = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ids(ds []push.Device) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID+"="+d.Token)
	}
	return out
}

func testDevices(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Store
	dev := func(org, user, id, token string) push.Device {
		return push.Device{Org: org, User: user, ID: id, Token: token, Platform: push.PlatformAndroid, AppVersion: "1.2.0", Updated: t0}
	}
	must(t, s.PutDevice(ctx, dev("o", "u1", "d1", "tok-a")))
	must(t, s.PutDevice(ctx, dev("o", "u1", "d2", "tok-b")))
	got, err := s.Devices(ctx, "o", "u1")
	must(t, err)
	if !slices.Equal(ids(got), []string{"d1=tok-a", "d2=tok-b"}) {
		t.Fatalf("Devices = %v", ids(got))
	}
	if got[0].Platform != push.PlatformAndroid || got[0].AppVersion != "1.2.0" || !got[0].Updated.Equal(t0) {
		t.Fatalf("device fields did not round-trip: %+v", got[0])
	}
	// A refresh replaces the token of the same device.
	d := dev("o", "u1", "d1", "tok-c")
	d.Platform, d.AppVersion, d.Updated = push.PlatformIOS, "1.3.0", t0.Add(time.Hour)
	must(t, s.PutDevice(ctx, d))
	got, _ = s.Devices(ctx, "o", "u1")
	if !slices.Equal(ids(got), []string{"d1=tok-c", "d2=tok-b"}) || got[0].Platform != push.PlatformIOS || got[0].AppVersion != "1.3.0" {
		t.Fatalf("after refresh: %+v", got)
	}
	// A token registered by another user (the phone changed hands) leaves
	// the first user.
	must(t, s.PutDevice(ctx, dev("o", "u2", "x", "tok-b")))
	got, _ = s.Devices(ctx, "o", "u1")
	if !slices.Equal(ids(got), []string{"d1=tok-c"}) {
		t.Fatalf("token kept by its previous user: %v", ids(got))
	}
	// Several users at once, across organisations.
	must(t, s.PutDevice(ctx, dev("o2", "u1", "d9", "tok-z")))
	many, err := s.UserDevices(ctx, []push.UserRef{{Org: "o", User: "u1"}, {Org: "o", User: "u2"}, {Org: "o2", User: "u1"}, {Org: "o", User: "nobody"}})
	must(t, err)
	slices.SortFunc(many, func(a, b push.Device) int {
		return strings.Compare(a.Org+"/"+a.User+"/"+a.ID, b.Org+"/"+b.User+"/"+b.ID)
	})
	if got := ids(many); !slices.Equal(got, []string{"d1=tok-c", "x=tok-b", "d9=tok-z"}) || many[2].Org != "o2" || many[1].User != "u2" {
		t.Fatalf("UserDevices = %v", got)
	}
	if ok, err := s.DeleteDevice(ctx, "o2", "u1", "d9"); err != nil || !ok {
		t.Fatalf("DeleteDevice(o2) = %v, %v", ok, err)
	}
	// Deleting: another user's device is not found; DeleteToken only
	// removes a device still holding that token.
	if ok, err := s.DeleteDevice(ctx, "o", "u2", "d1"); err != nil || ok {
		t.Fatalf("DeleteDevice of another user's id = %v, %v", ok, err)
	}
	if ok, err := s.DeleteDevice(ctx, "other-org", "u1", "d1"); err != nil || ok {
		t.Fatalf("DeleteDevice across organisations = %v, %v", ok, err)
	}
	if ok, err := s.DeleteToken(ctx, "o", "u1", "d1", "tok-a"); err != nil || ok {
		t.Fatalf("DeleteToken with a stale token = %v, %v", ok, err)
	}
	if ok, err := s.DeleteToken(ctx, "o", "u1", "d1", "tok-c"); err != nil || !ok {
		t.Fatalf("DeleteToken = %v, %v", ok, err)
	}
	if ok, err := s.DeleteDevice(ctx, "o", "u2", "x"); err != nil || !ok {
		t.Fatalf("DeleteDevice = %v, %v", ok, err)
	}
	for _, u := range []string{"u1", "u2"} {
		if got, err := s.Devices(ctx, "o", u); err != nil || len(got) != 0 {
			t.Fatalf("Devices(%s) after deletes = %v, %v", u, got, err)
		}
	}
}

func testPrefs(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Store
	if p, err := s.Prefs(ctx, "o", "u"); err != nil || len(p.Muted) != 0 {
		t.Fatalf("Prefs of a new user = %+v, %v", p, err)
	}
	must(t, s.PutPrefs(ctx, "o", "u", push.Prefs{Muted: []string{push.CategoryOrderStatus, push.CategoryVisitPlan}}))
	p, err := s.Prefs(ctx, "o", "u")
	must(t, err)
	if !slices.Equal(p.Muted, []string{push.CategoryOrderStatus, push.CategoryVisitPlan}) {
		t.Fatalf("Prefs = %+v", p)
	}
	must(t, s.PutPrefs(ctx, "o", "u", push.Prefs{}))
	if p, _ := s.Prefs(ctx, "o", "u"); len(p.Muted) != 0 {
		t.Fatalf("Prefs after unmuting = %+v", p)
	}
	if p, _ := s.Prefs(ctx, "o2", "u"); len(p.Muted) != 0 {
		t.Fatalf("another organisation's user shares prefs: %+v", p)
	}
	if q, err := s.QuietHours(ctx, "o"); err != nil || q.Enabled() {
		t.Fatalf("QuietHours of a new org = %+v, %v", q, err)
	}
	must(t, s.PutQuietHours(ctx, "o", push.QuietHours{Start: 22 * 60, End: 7 * 60}))
	if q, _ := s.QuietHours(ctx, "o"); q != (push.QuietHours{Start: 22 * 60, End: 7 * 60}) {
		t.Fatalf("QuietHours = %+v", q)
	}
}

func testTail(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Store
	h.AddOrg(t, "ob")
	h.AddOrg(t, "oa")
	orgs, err := s.Orgs(ctx)
	must(t, err)
	if !slices.Contains(orgs, "oa") || !slices.Contains(orgs, "ob") {
		t.Fatalf("Orgs = %v", orgs)
	}
	if cur, err := s.TailCursor(ctx, "oa"); err != nil || cur != 0 {
		t.Fatalf("TailCursor(new) = %d, %v", cur, err)
	}
	cur, ok, err := s.AcquireTail(ctx, "oa", "i1", t0, t0.Add(30*time.Second))
	if err != nil || !ok || cur != 0 {
		t.Fatalf("AcquireTail(free) = %d, %v, %v", cur, ok, err)
	}
	if _, ok, err := s.AcquireTail(ctx, "oa", "i2", t0.Add(10*time.Second), t0.Add(40*time.Second)); err != nil || ok {
		t.Fatalf("AcquireTail(held by i1) by i2 = %v, %v", ok, err)
	}
	if ok, err := s.AdvanceTail(ctx, "oa", "i1", 42, t0.Add(60*time.Second)); err != nil || !ok {
		t.Fatalf("AdvanceTail by holder = %v, %v", ok, err)
	}
	if ok, err := s.AdvanceTail(ctx, "oa", "i2", 99, t0.Add(60*time.Second)); err != nil || ok {
		t.Fatalf("AdvanceTail by non-holder = %v, %v", ok, err)
	}
	if all, err := s.TailCursors(ctx); err != nil || all["oa"] != 42 || all["ob"] != 0 {
		t.Fatalf("TailCursors = %v, %v; want oa at 42, ob at 0 (or absent)", all, err)
	}
	// The lease was extended to t0+60s by the advance.
	if _, ok, _ := s.AcquireTail(ctx, "oa", "i2", t0.Add(45*time.Second), t0.Add(90*time.Second)); ok {
		t.Fatal("i2 took a lease that AdvanceTail extended")
	}
	cur, ok, err = s.AcquireTail(ctx, "oa", "i2", t0.Add(61*time.Second), t0.Add(90*time.Second))
	if err != nil || !ok || cur != 42 {
		t.Fatalf("AcquireTail(expired) = %d, %v, %v; want 42, true", cur, ok, err)
	}
	if ok, _ := s.AdvanceTail(ctx, "oa", "i1", 50, t0.Add(99*time.Second)); ok {
		t.Fatal("the old holder advanced after losing the lease")
	}
	if cur, err := s.TailCursor(ctx, "oa"); err != nil || cur != 42 {
		t.Fatalf("TailCursor = %d, %v; want 42", cur, err)
	}
	// Never backwards.
	if ok, err := s.AdvanceTail(ctx, "oa", "i2", 7, t0.Add(90*time.Second)); err != nil || !ok {
		t.Fatalf("AdvanceTail = %v, %v", ok, err)
	}
	if cur, _, _ := s.AcquireTail(ctx, "oa", "i2", t0.Add(62*time.Second), t0.Add(90*time.Second)); cur != 42 {
		t.Fatalf("cursor moved back to %d", cur)
	}
	// Organisations are independent.
	if cur, ok, _ := s.AcquireTail(ctx, "ob", "i1", t0, t0.Add(30*time.Second)); !ok || cur != 0 {
		t.Fatalf("AcquireTail(ob) = %d, %v", cur, ok)
	}
}

func note(id string, due time.Time) push.Notification {
	return push.Notification{ID: id, Org: "o", User: "u", Trigger: push.TriggerFollowUpDone, Category: push.CategoryFollowUp,
		Collection: "follow_ups", DocID: "fu-" + id, Seq: 7, Urgent: true, Title: "T " + id, Body: "B " + id,
		Created: t0, Due: due, Status: push.StatusPending}
}

func testOutbox(t *testing.T, h Harness) {
	ctx := context.Background()
	s := h.Store
	n, err := s.Enqueue(ctx, []push.Notification{note("a", t0), note("b", t0.Add(time.Minute))})
	if err != nil || n != 2 {
		t.Fatalf("Enqueue = %d, %v", n, err)
	}
	// Re-enqueueing (a tailer that crashed before its cursor moved) is a
	// no-op for existing ids, even with other content.
	again := note("a", t0.Add(time.Hour))
	again.Title = "changed"
	n, err = s.Enqueue(ctx, []push.Notification{again, note("c", t0)})
	if err != nil || n != 1 {
		t.Fatalf("Enqueue again = %d, %v; want 1 new", n, err)
	}
	got, err := s.Notification(ctx, "a")
	must(t, err)
	want := note("a", t0)
	if got.Title != want.Title || !got.Due.Equal(t0) || got.Status != push.StatusPending || got.Org != "o" || got.User != "u" ||
		got.Trigger != want.Trigger || got.Category != want.Category || got.Collection != "follow_ups" || got.DocID != "fu-a" ||
		got.Seq != 7 || !got.Urgent || got.Body != "B a" || !got.Created.Equal(t0) || got.Attempts != 0 {
		t.Fatalf("Notification(a) = %+v", got)
	}
	if _, err := s.Notification(ctx, "nope"); engine.ErrorKind(err) != engine.KindNotFound {
		t.Fatalf("Notification(missing) err = %v", err)
	}

	// Only due rows are claimed, in due order, up to the limit.
	cl, err := s.Claim(ctx, "i1", t0, t0.Add(time.Minute), 10)
	must(t, err)
	if got := notifIDs(cl); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("Claim at t0 = %v; want a c", got)
	}
	// Held: nobody else gets them, not even the same instance.
	if cl2, _ := s.Claim(ctx, "i2", t0.Add(30*time.Second), t0.Add(2*time.Minute), 10); len(cl2) != 0 {
		t.Fatalf("claimed while leased: %v", notifIDs(cl2))
	}
	// Completing as a retry: attempts, error, due and delivered stick.
	r := cl[0]
	r.Attempts, r.LastError, r.Due, r.Delivered = 1, "UNAVAILABLE", t0.Add(10*time.Minute), []string{"d1"}
	if ok, err := complete1(ctx, s, "i2", r); err != nil || ok {
		t.Fatalf("Complete by a non-holder = %v, %v", ok, err)
	}
	if ok, err := complete1(ctx, s, "i1", r); err != nil || !ok {
		t.Fatalf("Complete = %v, %v", ok, err)
	}
	got, _ = s.Notification(ctx, "a")
	if got.Attempts != 1 || got.LastError != "UNAVAILABLE" || !got.Due.Equal(t0.Add(10*time.Minute)) ||
		!slices.Equal(got.Delivered, []string{"d1"}) || got.Status != push.StatusPending || got.LeaseOwner != "" {
		t.Fatalf("after retry Complete: %+v", got)
	}
	// The lease of c expires: another instance takes it over.
	cl, err = s.Claim(ctx, "i2", t0.Add(2*time.Minute), t0.Add(3*time.Minute), 10)
	must(t, err)
	if got := notifIDs(cl); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("Claim after expiry = %v; want b c", got)
	}
	for _, r := range cl {
		r.Attempts, r.Status, r.SentAt = 1, push.StatusSent, t0.Add(2*time.Minute)
		if ok, err := complete1(ctx, s, "i2", r); err != nil || !ok {
			t.Fatalf("Complete(%s) = %v, %v", r.ID, ok, err)
		}
	}
	if ok, _ := complete1(ctx, s, "i1", note("c", t0)); ok {
		t.Fatal("the instance whose lease expired completed the row")
	}
	got, _ = s.Notification(ctx, "c")
	if got.Status != push.StatusSent || !got.SentAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("c = %+v", got)
	}
	// Sent rows are never claimed again; a is due at t0+10m.
	cl, _ = s.Claim(ctx, "i1", t0.Add(time.Hour), t0.Add(2*time.Hour), 10)
	if got := notifIDs(cl); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("Claim later = %v; want a", got)
	}
	r = cl[0]
	r.Attempts, r.Status, r.LastError = 2, push.StatusDead, "gave up"
	must(t, completeOK(ctx, s, "i1", r))
	if cl, _ := s.Claim(ctx, "i1", t0.Add(48*time.Hour), t0.Add(49*time.Hour), 10); len(cl) != 0 {
		t.Fatalf("claimed dead or sent rows: %v", notifIDs(cl))
	}
	if got, _ := s.Notification(ctx, "a"); got.Status != push.StatusDead || got.LastError != "gave up" {
		t.Fatalf("dead row = %+v", got)
	}

	// Pruning: sent and dead rows due before the mark go; pending ones stay.
	_, err = s.Enqueue(ctx, []push.Notification{note("p", t0)})
	must(t, err)
	if pending, dead, err := s.OutboxDepth(ctx); err != nil || pending != 1 || dead != 1 {
		t.Fatalf("OutboxDepth = %d pending, %d dead, %v; want p pending and a dead", pending, dead, err)
	}
	if n, err := s.Prune(ctx, t0.Add(2*time.Minute)); err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2 (b and c, sent and due before t0+2m)", n, err)
	}
	for id, gone := range map[string]bool{"a": false, "b": true, "c": true, "p": false} {
		_, err := s.Notification(ctx, id)
		if gone != (engine.ErrorKind(err) == engine.KindNotFound) {
			t.Errorf("after Prune, %s: %v (gone: %v)", id, err, gone)
		}
	}
	if n, err := s.Prune(ctx, t0.Add(48*time.Hour)); err != nil || n != 1 {
		t.Fatalf("Prune later = %d, %v; want the dead row", n, err)
	}
	if _, err := s.Notification(ctx, "p"); err != nil {
		t.Fatalf("a pending row was pruned: %v", err)
	}
}

func completeOK(ctx context.Context, s push.Store, owner string, n push.Notification) error {
	ok, err := complete1(ctx, s, owner, n)
	if err == nil && !ok {
		err = fmt.Errorf("Complete(%s): lease not held", n.ID)
	}
	return err
}

func complete1(ctx context.Context, s push.Store, owner string, n push.Notification) (bool, error) {
	k, err := s.Complete(ctx, owner, []push.Notification{n})
	return k == 1, err
}

func notifIDs(ns []push.Notification) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.ID)
	}
	slices.Sort(out)
	return out
}

// testConcurrentClaims: claimers on one or two store instances race over
// the same due rows; every row is claimed exactly once.
func testConcurrentClaims(t *testing.T, h Harness) {
	ctx := context.Background()
	const rows = 60
	var ns []push.Notification
	for i := range rows {
		ns = append(ns, note(fmt.Sprintf("n%02d", i), t0))
	}
	if _, err := h.Store.Enqueue(ctx, ns); err != nil {
		t.Fatal(err)
	}
	stores := []push.Store{h.Store}
	if h.Second != nil {
		stores = append(stores, h.Second(t))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%len(stores)]
			owner := fmt.Sprintf("i%d", w)
			for {
				cl, err := s.Claim(ctx, owner, t0, t0.Add(time.Hour), 7)
				if err != nil {
					errs <- err
					return
				}
				if len(cl) == 0 {
					return
				}
				mu.Lock()
				for _, n := range cl {
					seen[n.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A claimer may stop early after losing every row it tried; what is
	// left is claimed here, still once.
	cl, err := h.Store.Claim(ctx, "sweep", t0, t0.Add(time.Hour), rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range cl {
		seen[n.ID]++
	}
	if len(seen) != rows {
		t.Fatalf("%d of %d rows claimed", len(seen), rows)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
}
