package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// BenchmarkEnginePush measures the engine and the SQLite store without HTTP:
// batches of 100 ~300-byte notes, as in app's BenchmarkPush.
func BenchmarkEnginePush(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sch, err := schemas.Load()
	if err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: st, Schemas: sch})
	if err != nil {
		b.Fatal(err)
	}
	actor := engine.Actor{Org: "org-1", User: "u-1", Roles: []string{"rep"}}
	var custs []engine.UpsertDoc
	for c := range 500 {
		custs = append(custs, engine.UpsertDoc{Collection: "customers", ID: fmt.Sprintf("c-%03d", c),
			Fields: map[string]json.RawMessage{"name": json.RawMessage(`"Customer"`), "assigned_reps": json.RawMessage(`["u-1"]`)}})
	}
	if _, err := eng.Upsert(ctx, engine.Actor{Org: "org-1", User: "u-admin", Roles: []string{"admin"}}, "bench", custs); err != nil {
		b.Fatal(err)
	}
	n := 0
	for i := 0; b.Loop(); i++ {
		req := engine.PushRequest{DeviceID: "bench-dev"}
		for k := range 100 {
			id := fmt.Sprintf("n-%07d", i*100+k)
			doc, _ := json.Marshal(map[string]any{"customer_id": fmt.Sprintf("c-%03d", (i*100+k)%500), "created_at": "2026-11-29T09:12:00Z",
				"text": fmt.Sprintf("Visit %d: the plant manager wants 40 IE3 motors (15 kW) and 200 m of 4-core cable by March; asked for a quote with the framework discount and a delivery slot before the shutdown week.", k)})
			req.Mutations = append(req.Mutations, engine.Mutation{ID: "m-" + id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate, Doc: doc})
		}
		outs, err := eng.Push(ctx, actor, req)
		if err != nil || outs[99].Status != engine.StatusApplied {
			b.Fatalf("push: %v %+v", err, outs[99])
		}
		n += 100
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "mutations/s")
}
