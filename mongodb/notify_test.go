package mongodb

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/push/fcm"
	"github.com/fieldsync/fieldsync/push/pushtest"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// TestPushContract runs the push store contract on FerretDB, with a second
// Store instance on the same database for the concurrent claims.
func TestPushContract(t *testing.T) {
	t.Parallel()
	pushtest.Run(t, func(t *testing.T) pushtest.Harness {
		db := freshDB()
		opt := Options{Timeout: patience.Of(t)}
		s := openT(t, db, opt)
		t.Cleanup(func() { s.Close() })
		return pushtest.Harness{Store: s,
			AddOrg: func(t *testing.T, id string) {
				if err := s.PutOrg(context.Background(), &identity.Org{ID: id, Name: id, TimeZone: "UTC", Created: time.Now()}); err != nil {
					t.Fatal(err)
				}
			},
			Second: func(t *testing.T) push.Store {
				s2 := openT(t, db, opt)
				t.Cleanup(func() { s2.Close() })
				return s2
			}}
	})
}

// TestTwoDispatchers: two server instances (two Store instances on one
// database, each with its own dispatcher and the real FCM SDK against one
// fake FCM) drain one outbox concurrently: both dispatch, and no
// notification reaches its device twice.
func TestTwoDispatchers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := freshDB()
	opt := Options{Timeout: patience.Of(t)}
	stores := []*Store{openT(t, db, opt), openT(t, db, opt)}
	for _, s := range stores {
		t.Cleanup(func() { s.Close() })
	}
	fake := fakefcm.Start()
	defer fake.Close()
	sender, err := fcm.New(ctx, fcm.Config{ProjectID: "fieldsync-test", Options: []option.ClientOption{
		option.WithEndpoint(fake.URL()), option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}))}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	now := time.Now()
	var ns []push.Notification
	for i := range n {
		u := fmt.Sprintf("u%02d", i)
		if err := stores[0].PutDevice(ctx, push.Device{Org: "o", User: u, ID: "phone", Token: "tok-" + u,
			Platform: push.PlatformAndroid, AppVersion: "1", Updated: now}); err != nil {
			t.Fatal(err)
		}
		ns = append(ns, push.Notification{ID: "n-" + u, Org: "o", User: u, Trigger: push.TriggerOrderStatus,
			Category: push.CategoryOrderStatus, Collection: "orders", DocID: "o" + u, Title: "t", Body: "b",
			Created: now, Due: now.Add(-time.Second)})
	}
	if k, err := stores[0].Enqueue(ctx, ns); err != nil || k != n {
		t.Fatalf("Enqueue = %d, %v", k, err)
	}
	claimed := make([]int, 2)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := push.NewDispatcher(push.DispatcherConfig{Store: s, Sender: sender, Instance: fmt.Sprintf("instance-%d", i), Batch: 5})
			// Until every device got its push: a pass that lost every row
			// it tried to the other instance claims nothing and goes on.
			deadline := time.Now().Add(patience.Of(t))
			for len(fake.Requests()) < n && time.Now().Before(deadline) {
				k, err := d.Pass(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				claimed[i] += k
			}
		}()
	}
	wg.Wait()
	perToken := map[string]int{}
	for _, r := range fake.Requests() {
		perToken[r.Token]++
	}
	if len(perToken) != n {
		t.Fatalf("%d of %d devices reached", len(perToken), n)
	}
	for tok, k := range perToken {
		if k != 1 {
			t.Errorf("%s got %d pushes", tok, k)
		}
	}
	if claimed[0] == 0 || claimed[1] == 0 || claimed[0]+claimed[1] != n {
		t.Errorf("claims per instance %v; want both > 0, %d in all", claimed, n)
	}
	for _, x := range ns {
		got, err := stores[1].Notification(ctx, x.ID)
		if err != nil || got.Status != push.StatusSent || got.Attempts != 1 {
			t.Fatalf("%s: %+v, %v", x.ID, got, err)
		}
	}
}

// TestTwoTailers: two instances tail one organisation's feed at once (as
// after a lease ran out under a stalled instance; on FerretDB the lease is
// not a compare-and-swap either): every notification is in the outbox
// once, and the cursor ends at the feed's end.
func TestTwoTailers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := freshDB()
	opt := Options{Timeout: patience.Of(t)}
	stores := []*Store{openT(t, db, opt), openT(t, db, opt)}
	for _, s := range stores {
		t.Cleanup(func() { s.Close() })
	}
	now := time.Now()
	if err := stores[0].PutOrg(ctx, &identity.Org{ID: "o", Name: "o", TimeZone: "UTC", Created: now}); err != nil {
		t.Fatal(err)
	}
	const n = 30
	var last int64
	closedAt := now.UTC().Format(time.RFC3339)
	for i := range n {
		id := fmt.Sprintf("fu-%02d", i)
		body, _ := json.Marshal(map[string]any{"status": "done", "rep_id": "r1", "notify_on_done": []string{"rep"},
			"closed_at": closedAt, "closed_by": "cc1"})
		_, err := stores[i%2].Push(ctx, engine.PushBatch{Actor: engine.Actor{Org: "o", User: "cc1"}, Device: "d",
			Mutations: []engine.Mutation{{ID: id, Collection: "follow_ups", DocID: id, Op: engine.OpUpdate}}},
			func(int, *engine.Document) (*engine.Document, engine.Outcome) {
				return &engine.Document{Org: "o", Collection: "follow_ups", ID: id, Owner: "cc1", Version: 1, Body: body,
						Fields: map[string]engine.FieldMeta{}, Scopes: []string{fieldsales.ScopeOrg}, UpdatedAt: now, UpdatedBy: "cc1"},
					engine.Outcome{MutationID: id, Status: engine.StatusApplied, Version: 1}
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	pg, err := stores[0].Pull(ctx, engine.PullQuery{Org: "o", Scopes: []string{fieldsales.ScopeOrg}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	changes := pg.Changes
	last = changes[len(changes)-1].Seq
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each its own instance id, and a lease that is always expired
			// for the other: both tail the whole feed.
			tl := push.NewTailer(push.TailerConfig{Feed: s, Store: s, Directory: s, Instance: fmt.Sprintf("i%d", i),
				Lease: time.Nanosecond, Page: 4, Metrics: push.NewMetrics(regs[i])})
			// Until the cursor is at the feed's end: a tailer whose lease
			// was taken stops after its page, and the next call goes on.
			deadline := time.Now().Add(patience.Of(t))
			for time.Now().Before(deadline) {
				if err := tl.TailOrg(ctx, "o"); err != nil {
					t.Error(err)
					return
				}
				if cur, err := s.TailCursor(ctx, "o"); err != nil || cur == last {
					return
				}
			}
		}()
	}
	wg.Wait()
	enq := 0.0
	for _, r := range regs {
		mfs, _ := r.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "fieldsync_notifications_enqueued_total" {
				enq += mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
	}
	if enq != n {
		t.Fatalf("%v notifications inserted in all, want %d (each once)", enq, n)
	}
	for i := range n {
		id := push.NotificationID("o", "follow_ups", fmt.Sprintf("fu-%02d", i), push.TriggerFollowUpDone, "done|"+closedAt, "r1")
		if got, err := stores[0].Notification(ctx, id); err != nil || got.User != "r1" {
			t.Fatalf("notification of fu-%02d: %+v, %v", i, got, err)
		}
	}
	if cur, err := stores[1].TailCursor(ctx, "o"); err != nil || cur != last {
		t.Fatalf("cursor %d, %v; want the feed's end %d", cur, err, last)
	}
}
