// Package webhooktest is the contract suite every webhook.Store adapter
// (SQLite and MongoDB) runs from one source: subscriptions written with a
// compare-and-swap, a cursor that only moves forward, idempotent enqueues,
// claims that never give one delivery to two owners while a lease holds,
// and organisations that never see each other's records.
//
// Stores keep times to the millisecond.
package webhooktest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/webhook"
)

// Run runs the suite; open returns a fresh, empty store that the adapter
// closes when the test ends.
func Run(t *testing.T, open func(t *testing.T) webhook.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s webhook.Store)
	}{
		{"Subscriptions", testSubscriptions},
		{"Cursor", testCursor},
		{"Enqueue", testEnqueue},
		{"ClaimComplete", testClaimComplete},
		{"ClaimRace", testClaimRace},
		{"Redeliver", testRedeliver},
		{"Registrations", testRegistrations},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, open(t))
		})
	}
}

var ctx = context.Background()

func at(minute int) time.Time { return time.Date(2026, 12, 4, 7, minute, 5, 123_000_000, time.UTC) }

func newSub(org, id string) *webhook.Subscription {
	return &webhook.Subscription{Org: org, ID: id, URL: "https://erp.example.com/hook", Events: []string{webhook.EventFollowUpCreated},
		Roles: []string{"order_desk"}, Secret: "whsec_c2VjcmV0", Created: at(0), Updated: at(0)}
}

func testSubscriptions(t *testing.T, s webhook.Store) {
	if _, err := s.Subscription(ctx, "acme", "s-1"); engine.ErrorKind(err) != engine.KindNotFound {
		t.Fatalf("Subscription of an empty store: %v", err)
	}
	a := newSub("acme", "s-1")
	if err := s.PutSubscription(ctx, a); err != nil || a.Version != 1 {
		t.Fatalf("create: %v, version %d", err, a.Version)
	}
	dup := newSub("acme", "s-1")
	if err := s.PutSubscription(ctx, dup); engine.ErrorCode(err) != identity.CodeVersionMismatch {
		t.Fatalf("creating a taken id: %v", err)
	}
	got, err := s.Subscription(ctx, "acme", "s-1")
	if err != nil || got.URL != a.URL || !slices.Equal(got.Events, a.Events) || !slices.Equal(got.Roles, a.Roles) ||
		len(got.Activities) != 0 || got.Secret != a.Secret || got.Version != 1 || !got.Created.Equal(a.Created) || !got.PrevUntil.IsZero() {
		t.Fatalf("read back: %+v %v", got, err)
	}
	next := *got
	next.PrevSecret, next.PrevUntil, next.Secret = next.Secret, at(30), "whsec_bmV3"
	next.Disabled, next.DisabledReason, next.Failures, next.FailingSince = true, "50 failures", 50, at(1)
	if err := s.PutSubscription(ctx, &next); err != nil || next.Version != 2 {
		t.Fatalf("replace: %v, version %d", err, next.Version)
	}
	stale := *got
	if err := s.PutSubscription(ctx, &stale); engine.ErrorCode(err) != identity.CodeVersionMismatch {
		t.Fatalf("replacing from a stale version: %v", err)
	}
	got, _ = s.Subscription(ctx, "acme", "s-1")
	if got.PrevSecret != "whsec_c2VjcmV0" || !got.PrevUntil.Equal(at(30)) || !got.Disabled || got.DisabledReason != "50 failures" ||
		got.Failures != 50 || !got.FailingSince.Equal(at(1)) {
		t.Fatalf("after replace: %+v", got)
	}
	missing := newSub("acme", "s-9")
	missing.Version = 4
	if err := s.PutSubscription(ctx, missing); engine.ErrorKind(err) != engine.KindNotFound {
		t.Fatalf("replacing a missing subscription: %v", err)
	}
	if err := s.PutSubscription(ctx, newSub("beta", "s-1")); err != nil {
		t.Fatalf("the same id in another organisation: %v", err)
	}
	if err := s.PutSubscription(ctx, newSub("acme", "s-2")); err != nil {
		t.Fatal(err)
	}
	ids := func(org string) []string {
		l, err := s.Subscriptions(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range l {
			out = append(out, x.Org+"/"+x.ID)
		}
		return out
	}
	if got := ids("acme"); !slices.Equal(got, []string{"acme/s-1", "acme/s-2"}) {
		t.Errorf("acme's subscriptions: %v", got)
	}
	if got := ids(""); !slices.Equal(got, []string{"acme/s-1", "acme/s-2", "beta/s-1"}) {
		t.Errorf("every subscription: %v", got)
	}
}

func testCursor(t *testing.T, s webhook.Store) {
	if c, err := s.WebhookCursor(ctx, "acme"); c != 0 || err != nil {
		t.Fatalf("cursor of an empty store: %d %v", c, err)
	}
	for _, step := range []struct{ to, want int64 }{{10, 10}, {7, 10}, {12, 12}} {
		if err := s.AdvanceWebhookCursor(ctx, "acme", step.to); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.WebhookCursor(ctx, "acme"); c != step.want {
			t.Errorf("after advancing to %d: %d, want %d", step.to, c, step.want)
		}
	}
	if c, _ := s.WebhookCursor(ctx, "beta"); c != 0 {
		t.Errorf("another organisation's cursor moved: %d", c)
	}
}

func delivery(org, id string, due time.Time) webhook.Delivery {
	return webhook.Delivery{ID: id, Org: org, Sub: "s-1", Event: webhook.EventFollowUpCreated, Seq: 3,
		Body: []byte(`{"type":"follow_up.created"}`), Created: due, Due: due, Status: webhook.StatusPending}
}

func testEnqueue(t *testing.T, s webhook.Store) {
	ds := []webhook.Delivery{delivery("acme", "wh_1", at(1)), delivery("acme", "wh_2", at(1))}
	if n, err := s.EnqueueDeliveries(ctx, ds); n != 2 || err != nil {
		t.Fatalf("Enqueue = %d %v", n, err)
	}
	again := []webhook.Delivery{delivery("acme", "wh_2", at(5)), delivery("acme", "wh_3", at(1))}
	again[0].Body = []byte(`{"changed":true}`)
	if n, err := s.EnqueueDeliveries(ctx, again); n != 1 || err != nil {
		t.Fatalf("Enqueue again = %d %v, want only the new one", n, err)
	}
	d, err := s.Delivery(ctx, "acme", "wh_2")
	if err != nil || string(d.Body) != `{"type":"follow_up.created"}` || !d.Due.Equal(at(1)) || d.Status != webhook.StatusPending || d.Seq != 3 {
		t.Fatalf("an enqueued delivery was rewritten: %+v %v", d, err)
	}
	if _, err := s.Delivery(ctx, "beta", "wh_2"); engine.ErrorKind(err) != engine.KindNotFound {
		t.Fatalf("another organisation reads the delivery: %v", err)
	}
	l, err := s.Deliveries(ctx, "acme", "s-1", "", 10)
	if err != nil || len(l) != 3 {
		t.Fatalf("Deliveries = %d %v", len(l), err)
	}
	if l, _ := s.Deliveries(ctx, "beta", "s-1", "", 10); len(l) != 0 {
		t.Fatalf("another organisation lists %d deliveries", len(l))
	}
}

func testClaimComplete(t *testing.T, s webhook.Store) {
	s.EnqueueDeliveries(ctx, []webhook.Delivery{delivery("acme", "wh_a", at(1)), delivery("acme", "wh_b", at(9))})
	if ds, err := s.ClaimDeliveries(ctx, "i-1", at(0), at(1), 10); len(ds) != 0 || err != nil {
		t.Fatalf("claim before due: %v %v", ds, err)
	}
	ds, err := s.ClaimDeliveries(ctx, "i-1", at(2), at(3), 10)
	if err != nil || len(ds) != 1 || ds[0].ID != "wh_a" || ds[0].LeaseOwner != "i-1" {
		t.Fatalf("claim: %+v %v", ds, err)
	}
	if ds, _ := s.ClaimDeliveries(ctx, "i-2", at(2), at(3), 10); len(ds) != 0 {
		t.Fatalf("a leased delivery was claimed again: %+v", ds)
	}
	// The lease ran out (its owner died): another instance takes it, and the
	// first may no longer complete it.
	ds, _ = s.ClaimDeliveries(ctx, "i-2", at(3), at(4), 10)
	if len(ds) != 1 || ds[0].ID != "wh_a" {
		t.Fatalf("claim after the lease ran out: %+v", ds)
	}
	d := ds[0]
	d.Status, d.Attempts, d.LastError, d.Due = webhook.StatusPending, 1, "HTTP 500", at(6)
	if ok, err := s.CompleteDelivery(ctx, "i-1", d); ok || err != nil {
		t.Fatalf("complete by the owner who lost the lease: %v %v", ok, err)
	}
	if ok, err := s.CompleteDelivery(ctx, "i-2", d); !ok || err != nil {
		t.Fatalf("complete by the owner: %v %v", ok, err)
	}
	got, _ := s.Delivery(ctx, "acme", "wh_a")
	if got.Attempts != 1 || got.LastError != "HTTP 500" || !got.Due.Equal(at(6)) || got.LeaseOwner != "" || got.Status != webhook.StatusPending {
		t.Fatalf("after a failed attempt: %+v", got)
	}
	ds, _ = s.ClaimDeliveries(ctx, "i-1", at(6), at(7), 10)
	if len(ds) != 1 {
		t.Fatalf("retry claim: %+v", ds)
	}
	d = ds[0]
	d.Status, d.Attempts, d.LastError, d.SentAt = webhook.StatusSent, 2, "", at(6)
	if ok, _ := s.CompleteDelivery(ctx, "i-1", d); !ok {
		t.Fatal("complete sent")
	}
	if ds, _ := s.ClaimDeliveries(ctx, "i-1", at(8), at(9), 10); len(ds) != 0 {
		t.Fatalf("a sent delivery was claimed: %+v", ds)
	}
	got, _ = s.Delivery(ctx, "acme", "wh_a")
	if got.Status != webhook.StatusSent || !got.SentAt.Equal(at(6)) {
		t.Fatalf("sent: %+v", got)
	}
}

// testClaimRace: concurrent claimers from several instances get disjoint
// deliveries, and every due delivery is claimed by someone.
func testClaimRace(t *testing.T, s webhook.Store) {
	var ds []webhook.Delivery
	for i := range 40 {
		ds = append(ds, delivery("acme", fmt.Sprintf("wh_%02d", i), at(1)))
	}
	if _, err := s.EnqueueDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			owner := fmt.Sprintf("i-%d", w)
			for range 20 {
				got, err := s.ClaimDeliveries(ctx, owner, at(2), at(30), 3)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, d := range got {
					if prev, ok := seen[d.ID]; ok {
						t.Errorf("%s claimed by %s and %s", d.ID, prev, owner)
					}
					seen[d.ID] = owner
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Errorf("%d of 40 deliveries claimed", len(seen))
	}
}

func testRedeliver(t *testing.T, s webhook.Store) {
	d := delivery("acme", "wh_r", at(1))
	d.Status, d.Attempts, d.LastError = webhook.StatusDead, 12, "HTTP 500"
	s.EnqueueDeliveries(ctx, []webhook.Delivery{d})
	if ds, _ := s.ClaimDeliveries(ctx, "i-1", at(2), at(3), 10); len(ds) != 0 {
		t.Fatalf("a dead delivery was claimed: %+v", ds)
	}
	if err := s.Redeliver(ctx, "beta", "wh_r", at(4)); engine.ErrorKind(err) != engine.KindNotFound {
		t.Fatalf("another organisation redelivers: %v", err)
	}
	if err := s.Redeliver(ctx, "acme", "wh_r", at(4)); err != nil {
		t.Fatal(err)
	}
	ds, _ := s.ClaimDeliveries(ctx, "i-1", at(4), at(5), 10)
	if len(ds) != 1 || ds[0].Attempts != 0 || ds[0].Status != webhook.StatusPending {
		t.Fatalf("after redeliver: %+v", ds)
	}
	if l, _ := s.Deliveries(ctx, "acme", "s-1", webhook.StatusDead, 10); len(l) != 0 {
		t.Fatalf("still dead: %+v", l)
	}
}

// devices is the push device registry of a store that keeps webhooks: the
// registrations come from its writes.
type devices interface {
	PutDevice(ctx context.Context, d push.Device) error
	DeleteDevice(ctx context.Context, org, user, id string) (bool, error)
}

// testRegistrations: the write that creates a device record carries its
// registration until it is taken; a refresh is none; a device deleted and
// registered again is a new one, and taking the old one leaves it;
// organisations see only their own, oldest first, limit honoured.
func testRegistrations(t *testing.T, s webhook.Store) {
	reg, ok := s.(devices)
	if !ok {
		t.Fatalf("%T keeps webhooks but no push devices: device.registered needs both in one store", s)
	}
	dev := func(org, user, id, token string, minute int) push.Device {
		return push.Device{Org: org, User: user, ID: id, Token: token, Platform: push.PlatformAndroid, AppVersion: "1.0", Updated: at(minute)}
	}
	pending := func(org string, limit int) []webhook.Registration {
		t.Helper()
		rs, err := s.PendingRegistrations(ctx, org, limit)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	must(t, reg.PutDevice(ctx, dev("acme", "u1", "d1", "tok-1", 1)))
	must(t, reg.PutDevice(ctx, dev("acme", "u2", "d2", "tok-2", 2)))
	must(t, reg.PutDevice(ctx, dev("beta", "u1", "d1", "tok-3", 0)))
	// A refresh (new token, platform, later time) is no new registration.
	d1 := dev("acme", "u1", "d1", "tok-1b", 3)
	d1.Platform = push.PlatformIOS
	must(t, reg.PutDevice(ctx, d1))
	rs := pending("acme", 10)
	want := []webhook.Registration{{Org: "acme", User: "u1", Device: "d1", Platform: push.PlatformIOS, At: at(1)},
		{Org: "acme", User: "u2", Device: "d2", Platform: push.PlatformAndroid, At: at(2)}}
	if !registrationsEqual(rs, want) {
		t.Fatalf("pending = %+v, want %+v", rs, want)
	}
	if got := pending("acme", 1); len(got) != 1 || got[0].Device != "d1" {
		t.Fatalf("limit 1: %+v", got)
	}
	if got := pending("beta", 10); len(got) != 1 || got[0].Org != "beta" {
		t.Fatalf("beta: %+v", got)
	}

	// u2's device is deleted and registered again after it was read:
	// taking what was read leaves the new registration.
	if ok, err := reg.DeleteDevice(ctx, "acme", "u2", "d2"); err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
	must(t, reg.PutDevice(ctx, dev("acme", "u2", "d2", "tok-2", 4)))
	must(t, s.TakeRegistrations(ctx, rs))
	rs = pending("acme", 10)
	if !registrationsEqual(rs, []webhook.Registration{{Org: "acme", User: "u2", Device: "d2", Platform: push.PlatformAndroid, At: at(4)}}) {
		t.Fatalf("after taking the first read: %+v", rs)
	}
	must(t, s.TakeRegistrations(ctx, rs))
	must(t, s.TakeRegistrations(ctx, rs)) // taking again is harmless
	if got := pending("acme", 10); len(got) != 0 {
		t.Fatalf("after taking everything: %+v", got)
	}
	// A refresh of a taken device is still none.
	must(t, reg.PutDevice(ctx, dev("acme", "u1", "d1", "tok-1c", 5)))
	if got := pending("acme", 10); len(got) != 0 {
		t.Fatalf("a refresh became a registration: %+v", got)
	}
	if got := pending("beta", 10); len(got) != 1 {
		t.Fatalf("taking acme's touched beta's: %+v", got)
	}
}

func registrationsEqual(a, b []webhook.Registration) bool {
	return slices.EqualFunc(a, b, func(x, y webhook.Registration) bool {
		return x.Org == y.Org && x.User == y.User && x.Device == y.Device && x.Platform == y.Platform && x.At.Equal(y.At)
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
