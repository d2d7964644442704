package push_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/push"
)

// BenchmarkDispatch measures push dispatch throughput: the dispatcher
// claims due notifications from the SQLite outbox, sends each to its user's
// device through the real Firebase Admin SDK (SendEach) to the fake FCM
// server on loopback, and records the outcomes. Each iteration dispatches
// one batch of 500 notifications to 500 devices; enqueueing is not timed.
// The store runs with production's synchronous=FULL (every commit
// fsynced). The fake runs in the benchmark's process and shares its CPUs.
func BenchmarkDispatch(b *testing.B) {
	e := newEnvSync(b, "FULL")
	const batch = 500
	ctx := context.Background()
	for u := range batch {
		user := fmt.Sprintf("u%03d", u)
		if err := e.st.PutDevice(ctx, push.Device{Org: org, User: user, ID: "phone", Token: "tok-" + user,
			Platform: push.PlatformAndroid, AppVersion: "1", Updated: t0}); err != nil {
			b.Fatal(err)
		}
	}
	d := push.NewDispatcher(push.DispatcherConfig{Store: e.st, Sender: e.sender, Instance: "bench", Batch: batch,
		Now: e.clk.Now})
	sent := 0
	var elapsed time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		ns := make([]push.Notification, batch)
		for u := range batch {
			user := fmt.Sprintf("u%03d", u)
			ns[u] = push.Notification{ID: fmt.Sprintf("n-%d-%s", i, user), Org: org, User: user, Trigger: push.TriggerFollowUpDone,
				Category: push.CategoryFollowUp, Collection: "follow_ups", DocID: fmt.Sprintf("fu-%d", i), Urgent: true,
				Title: "Follow-up done", Body: "credit_check for order o1 is done.", Created: t0, Due: t0}
		}
		if _, err := e.st.Enqueue(ctx, ns); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		n, err := d.Pass(ctx)
		elapsed += time.Since(start)
		if err != nil || n != batch {
			b.Fatalf("Pass = %d, %v", n, err)
		}
		sent += n
	}
	if got := len(e.fake.Delivered()); got != sent {
		b.Fatalf("fake FCM got %d, dispatched %d", got, sent)
	}
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "notifications/s")
}
