package workflow_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// BenchmarkSubmit measures a push of 100 new orders on SQLite: drafts (the
// hook reads them and has nothing to do) against submitted ones (checks,
// acceptance, five follow-ups each). The difference is the workflow's cost
// per submitted order.
func BenchmarkSubmit(b *testing.B) {
	for _, status := range []string{"draft", "submitted"} {
		b.Run(status, func(b *testing.B) {
			r := newRigWith(b, nil, nil)
			rep := engine.Actor{Org: org, User: "rep-1", Roles: []string{"rep"}}
			doc, _ := json.Marshal(map[string]any{"customer_id": "c-1", "status": status,
				"lines": []map[string]any{{"product_id": "p-1", "quantity": 1}}})
			n := 0
			b.ResetTimer()
			for range b.N {
				muts := make([]engine.Mutation, 100)
				for i := range muts {
					n++
					id := fmt.Sprintf("o-%d", n)
					muts[i] = engine.Mutation{ID: "m-" + id, Collection: "orders", DocID: id, Op: engine.OpCreate, Doc: doc}
				}
				if _, err := r.eng.Push(b.Context(), rep, engine.PushRequest{DeviceID: "phone", Mutations: muts}); err != nil {
					b.Fatal(err)
				}
			}
			// In the unit of issue 12's target: 0.3 ms per submitted order.
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*100)/1000, "ms/order")
		})
	}
}
