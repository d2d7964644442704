package mongodb

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/fieldsync/fieldsync/internal/ferrettest"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// BenchmarkQuietScopePull: a device of a quiet scope catches up from its
// checkpoint in an organisation where another scope wrote 20,000 changes
// since, its own one change last: every pull it needs until that change
// arrives. pulls/op is how many pulls that took, cmds/op the commands
// (round trips) they sent, docs/op the documents that came back.
// "prefix-current" is the usual case, other readers of the organisation
// having kept its resolved prefix up to date; "first-reader" removes the
// stored prefix before each catch-up (the first reader after the burst).
//
//	go test ./mongodb -run '^$' -bench BenchmarkQuietScopePull -benchtime 3x
//
// The seeding (about half a minute on FerretDB) goes through the direct
// store. Figures in docs/benchmarks.md ("A quiet scope in a busy organisation").
func BenchmarkQuietScopePull(b *testing.B) {
	const org, busy = "o-quiet", 20000
	ctx := context.Background()
	db := freshDB()
	seed, err := Open(ctx, uri, db, Options{Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { seed.Close() })
	push := func(scope string, ids []string) {
		pb := engine.PushBatch{Actor: engine.Actor{Org: org, User: "u"}, Device: "d"}
		for _, id := range ids {
			pb.Mutations = append(pb.Mutations, engine.Mutation{ID: "m-" + id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate})
		}
		if _, err := seed.Push(ctx, pb, func(i int, cur *engine.Document) (*engine.Document, engine.Outcome) {
			m := pb.Mutations[i]
			return &engine.Document{Org: org, Collection: m.Collection, ID: m.DocID, Owner: "u", Version: 1,
					Body: []byte(`{"text":"a note of about forty bytes, give or take"}`), Fields: map[string]engine.FieldMeta{"text": {Version: 1}},
					Scopes: []string{scope}, UpdatedBy: "u"},
				engine.Outcome{MutationID: m.ID, Status: engine.StatusApplied, Version: 1}
		}); err != nil {
			b.Fatal(err)
		}
	}
	push("user:quiet", []string{"checkpoint"})
	for i := 0; i < busy; i += 200 {
		var ids []string
		for j := i; j < i+200; j++ {
			ids = append(ids, fmt.Sprintf("busy-%06d", j))
		}
		push("user:busy", ids)
	}
	push("user:quiet", []string{"mine"})

	// Every command the reading store sends, and the documents that come
	// back: on MongoDB, with its indexes, what a pull reads follows the
	// documents it is sent (FerretDB scans whole collections whatever the
	// query, so its times say little about that).
	var cmds, docs atomic.Int64
	mon := &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if !ferrettest.DriverCommands[e.CommandName] {
				cmds.Add(1)
			}
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			for _, batch := range []string{"firstBatch", "nextBatch"} {
				if v, err := e.Reply.LookupErr("cursor", batch); err == nil {
					if arr, ok := v.ArrayOK(); ok {
						vals, _ := arr.Values()
						docs.Add(int64(len(vals)))
					}
				}
			}
		},
	}
	s, err := Open(ctx, uri, db, Options{Timeout: time.Minute, Monitor: mon})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	catchUp := func(b *testing.B) int {
		after := int64(1) // the device has the checkpoint change
		for pulls := 1; ; pulls++ {
			pg, err := s.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{"user:quiet"}, After: after, Limit: 100})
			if err != nil {
				b.Fatal(err)
			}
			if len(pg.Changes) > 0 {
				if pg.Changes[0].ID != "mine" {
					b.Fatalf("pull %d: %+v", pulls, pg.Changes)
				}
				return pulls
			}
			if !pg.More || pg.Through <= after {
				b.Fatalf("pull %d: nothing and no progress: %+v", pulls, pg)
			}
			after = pg.Through
		}
	}
	for _, first := range []bool{false, true} {
		name := "prefix-current"
		if first {
			name = "first-reader"
		}
		b.Run(name, func(b *testing.B) {
			pulls := 0
			cmds.Store(0)
			docs.Store(0)
			for b.Loop() {
				if first {
					b.StopTimer()
					// The stored resolved prefix (pull.go's prefixID);
					// a store without one deletes nothing.
					if _, err := seed.counters.DeleteOne(ctx, bson.D{{Key: "_id", Value: "prefix" + sep + org}}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				pulls += catchUp(b)
			}
			b.ReportMetric(float64(pulls)/float64(b.N), "pulls/op")
			b.ReportMetric(float64(cmds.Load())/float64(b.N), "cmds/op")
			b.ReportMetric(float64(docs.Load())/float64(b.N), "docs/op")
		})
	}
}
