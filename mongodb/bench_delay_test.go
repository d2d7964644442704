package mongodb

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"

	"github.com/fieldsync/fieldsync/internal/delayproxy"
	"github.com/fieldsync/fieldsync/internal/ferrettest"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// BenchmarkRoundTrips runs the store's operations against FerretDB
// directly and through a proxy that delays every command by 5 ms (a
// database 5 ms away), in one run: the difference divided by 5 ms is the
// round trips an operation waits for, the cost that dominates on a real
// network.
//
//	go test ./mongodb -run '^$' -bench BenchmarkRoundTrips -benchtime 20x
//
// Figures in docs/benchmarks.md ("MongoDB round trips").
func BenchmarkRoundTrips(b *testing.B) {
	u, err := url.Parse(uri)
	if err != nil {
		b.Fatal(err)
	}
	for _, delay := range []time.Duration{0, 5 * time.Millisecond} {
		target := uri
		if delay > 0 {
			p, err := delayproxy.Start(u.Host, delay)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(p.Close)
			pu := *u
			pu.Host = p.Addr()
			target = pu.String()
		}
		var cmds atomic.Int64
		mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if !ferrettest.DriverCommands[e.CommandName] {
				cmds.Add(1)
			}
		}}
		s, err := Open(context.Background(), target, freshDB(), Options{Timeout: time.Minute, Monitor: mon})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		benchStoreOps(b, s, fmt.Sprintf("delay=%s", delay), &cmds)
	}
}

// benchStoreOps runs each operation; cmds counts the commands the store
// sends, reported as cmds/op (the round trips, without the noise of a
// shared machine).
func benchStoreOps(b *testing.B, s *Store, name string, cmds *atomic.Int64) {
	ctx := context.Background()
	run := func(op string, f func(b *testing.B)) {
		b.Run(name+"/"+op, func(b *testing.B) {
			cmds.Store(0)
			for b.Loop() {
				f(b)
			}
			b.ReportMetric(float64(cmds.Load())/float64(b.N), "cmds/op")
		})
	}
	const scope = "user:u"
	n := 0
	batch := func(org string, k int) engine.PushBatch {
		pb := engine.PushBatch{Actor: engine.Actor{Org: org, User: "u"}, Device: "d"}
		for range k {
			n++
			id := fmt.Sprintf("n-%07d", n)
			pb.Mutations = append(pb.Mutations, engine.Mutation{ID: "m-" + id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate})
		}
		return pb
	}
	push := func(b *testing.B, pb engine.PushBatch) {
		if _, err := s.Push(ctx, pb, func(i int, cur *engine.Document) (*engine.Document, engine.Outcome) {
			m := pb.Mutations[i]
			return &engine.Document{Org: pb.Actor.Org, Collection: m.Collection, ID: m.DocID, Owner: "u", Version: 1,
					Body: []byte(`{"text":"a note of about forty bytes, give or take"}`), Fields: map[string]engine.FieldMeta{"text": {Version: 1}},
					Scopes: []string{scope}, UpdatedBy: "u"},
				engine.Outcome{MutationID: m.ID, Status: engine.StatusApplied, Version: 1}
		}); err != nil {
			b.Fatal(err)
		}
	}
	run("push-1", func(b *testing.B) { push(b, batch("o-push1", 1)) })
	run("push-100", func(b *testing.B) { push(b, batch("o-push100", 100)) })
	push(b, batch("o-pull", 100))
	run("pull-page-100", func(b *testing.B) {
		if _, err := s.Pull(ctx, engine.PullQuery{Org: "o-pull", Scopes: []string{scope}, After: 1, Limit: 100}); err != nil {
			b.Fatal(err)
		}
	})
	run("allocate", func(b *testing.B) {
		if _, err := s.allocate(ctx, "o-alloc", 1); err != nil {
			b.Fatal(err)
		}
	})
	orgs := make([]string, 100)
	for i := range orgs {
		orgs[i] = fmt.Sprintf("o-%03d", i)
	}
	run("head-hints-100-orgs", func(b *testing.B) {
		if _, err := s.HeadHints(ctx, orgs); err != nil {
			b.Fatal(err)
		}
	})
}
