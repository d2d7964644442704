package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/webhook"
)

// BenchmarkDeliver measures webhook delivery throughput: the dispatcher
// claims due deliveries from the SQLite store (synchronous=FULL, every
// commit fsynced), signs each, POSTs it to a local endpoint that verifies
// the signature and answers 204, and records the outcome. Each iteration is
// one delivery; enqueueing is not timed. The endpoint shares the
// benchmark's CPUs.
//
//	go test ./webhook -run '^$' -bench Deliver -benchtime 2000x
func BenchmarkDeliver(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "fieldsync.db"), sqlite.Options{Synchronous: "FULL"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	secret, _ := webhook.NewSecret(nil)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if webhook.Verify(r.Header, body, secret, time.Now(), 0) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(hs.Close)
	sub := &webhook.Subscription{Org: "acme", ID: "s-1", URL: hs.URL, Events: webhook.EventTypes, Secret: secret,
		Created: time.Now(), Updated: time.Now()}
	if err := st.PutSubscription(ctx, sub); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	var ds []webhook.Delivery
	for i := range b.N {
		ds = append(ds, webhook.Delivery{ID: fmt.Sprintf("wh_%08d", i), Org: "acme", Sub: "s-1", Event: webhook.EventFollowUpCreated,
			Body:    []byte(`{"type":"follow_up.created","timestamp":"2026-12-04T07:00:00Z","data":{"follow_up_id":"fu-o-1-erp_entry","order_id":"o-1"}}`),
			Created: now, Due: now, Status: webhook.StatusPending})
	}
	for start := 0; start < len(ds); start += 500 {
		if _, err := st.EnqueueDeliveries(ctx, ds[start:min(start+500, len(ds))]); err != nil {
			b.Fatal(err)
		}
	}
	d := webhook.NewDispatcher(webhook.DispatcherConfig{Store: st, Instance: "bench", Batch: 100, Workers: 8, AllowLoopback: true})
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		n, err := d.Pass(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatalf("nothing due with %d of %d sent", sent, b.N)
		}
		sent += n
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	if l, _ := st.Deliveries(ctx, "acme", "s-1", webhook.StatusPending, 10); len(l) != 0 {
		b.Fatalf("%d deliveries still pending (failed attempts)", len(l))
	}
}
