package app_test

// How long an edit takes to reach an open RxDB pull stream: a device pushes
// an update of a customer while phones hold replicateServer's pull streams
// (GET .../pullStream, one per collection) open; the time is from the push
// being sent to the message carrying the new value on one phone's customers
// stream, on both stores, with 3 and 30 phones. Figures are in
// docs/benchmarks.md:
//
//	go test ./app -run '^$' -bench BenchmarkRxDBLiveUpdate -benchtime 20x -count 3

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkRxDBLiveUpdate(b *testing.B) {
	for _, s := range wfStores {
		for _, phones := range []int{3, 30} {
			b.Run(fmt.Sprintf("%s/phones=%d", s.name, phones), func(b *testing.B) {
				benchRxDBLive(b, s.store, phones)
			})
		}
	}
}

// benchRxDBLive holds the pull streams of phones apps, one per collection
// as replicateServer does: two phones of rep-1, whose customer is edited,
// and one each of other reps, who see none of it.
func benchRxDBLive(b *testing.B, store accStore, phones int) {
	w := newAccWorld(b, store)
	admin := w.Operator("acme")
	createCustomer(b, w.Server.URL, admin, "c-1", "rep-1")
	tok := w.Token("acme", "rep-1", "rep")
	var msgs <-chan map[string]any
	for p := range phones {
		user := "rep-1"
		if p >= 2 {
			user = fmt.Sprintf("rep-%d", p)
		}
		for _, coll := range rxCollections {
			ch := openRxDBStream(b, w.Server.URL, w.Token("acme", user, "rep"), coll)
			if msgs == nil && coll == "customers" {
				msgs = ch
				continue
			}
			go func() {
				for range ch {
				}
			}()
		}
	}
	var total, pushing, worst time.Duration
	b.ResetTimer()
	for i := range b.N {
		value := fmt.Sprintf("live %d", i)
		t0 := time.Now()
		w.MustApply(tok, "pusher", []map[string]any{mUpdate(fmt.Sprintf("live-%d", i), "customers", "c-1", int64(i+1),
			map[string]any{"notes": value})})
		pushing += time.Since(t0)
		waitStreamed(b, msgs, "c-1", "notes", value)
		d := time.Since(t0)
		total += d
		worst = max(worst, d)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(total)/float64(b.N), "ms/update")
	b.ReportMetric(ms(pushing)/float64(b.N), "push-ms/update")
	b.ReportMetric(ms(worst), "max-ms")
	b.ReportMetric(0, "ns/op") // the latency is the figure, not the loop's time
}
