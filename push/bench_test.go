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
//
// The "log" variant uses a sender that accepts every message without any
// I/O: the outbox's own ceiling (claim, device read, record).
func BenchmarkDispatch(b *testing.B) {
	b.Run("fcm", func(b *testing.B) { benchDispatch(b, nil) })
	b.Run("log", func(b *testing.B) { benchDispatch(b, acceptAll{}) })
}

// acceptAll is a sender that accepts everything at once.
type acceptAll struct{}

func (acceptAll) Send(_ context.Context, msgs []push.Message) ([]push.Result, error) {
	return make([]push.Result, len(msgs)), nil
}

func benchDispatch(b *testing.B, sender push.Sender) {
	e := newEnvSync(b, "FULL")
	if sender == nil {
		sender = e.sender
	}
	const batch = 500
	ctx := context.Background()
	for u := range batch {
		user := fmt.Sprintf("u%03d", u)
		if err := e.st.PutDevice(ctx, push.Device{Org: org, User: user, ID: "phone", Token: "tok-" + user,
			Platform: push.PlatformAndroid, AppVersion: "1", Updated: t0}); err != nil {
			b.Fatal(err)
		}
	}
	d := push.NewDispatcher(push.DispatcherConfig{Store: e.st, Sender: sender, Instance: "bench", Batch: batch,
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
	if got := len(e.fake.Delivered()); sender == e.sender && got != sent {
		b.Fatalf("fake FCM got %d, dispatched %d", got, sent)
	}
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "notifications/s")
}
