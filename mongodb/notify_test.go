package mongodb

import (
	"context"
	"fmt"
	gosync "sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/internal/fakefcm"
	"github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/push/fcm"
	"github.com/fieldsync/fieldsync/push/pushtest"
)

// TestPushContract runs the push store contract on FerretDB, with a second
// Store instance on the same database for the concurrent claims.
func TestPushContract(t *testing.T) {
	t.Parallel()
	pushtest.Run(t, func(t *testing.T) pushtest.Harness {
		db := freshDB()
		opt := Options{Timeout: time.Minute}
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
	opt := Options{Timeout: time.Minute}
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
	var wg gosync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := push.NewDispatcher(push.DispatcherConfig{Store: s, Sender: sender, Instance: fmt.Sprintf("instance-%d", i), Batch: 5})
			// Until every device got its push: a pass that lost every row
			// it tried to the other instance claims nothing and goes on.
			deadline := time.Now().Add(30 * time.Second)
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
