package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// BenchmarkYearOfEdits edits one document 100,000 times over a simulated
// year (batches of 100, the clock moving 8.76 h per batch) and reports the
// room the store takes afterwards, with the daily compaction of the
// default retention (90 days) and, in the same run, without it (raw):
//
//	go test ./sqlite -run '^$' -bench BenchmarkYearOfEdits -benchtime 1x
//
// Figures in docs/benchmarks.md, "A year of edits".
func BenchmarkYearOfEdits(b *testing.B) {
	for _, compact := range []bool{false, true} {
		name := "raw"
		if compact {
			name = "retention-90d"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				yearOfEdits(b, compact)
			}
		})
	}
}

func yearOfEdits(b *testing.B, compact bool) {
	ctx := context.Background()
	const edits, batch = 100_000, 100
	t := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	step := 365 * 24 * time.Hour / (edits / batch)
	now := func() time.Time { return t }
	path := filepath.Join(b.TempDir(), "year.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{Now: now})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sch, err := schemas.Load()
	if err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: st, Schemas: sch, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	admin := engine.Actor{Org: "org-1", User: "u-admin", Roles: []string{"admin"}}
	if _, err := eng.Upsert(ctx, admin, "bench", []engine.UpsertDoc{{Collection: "customers", ID: "c-1",
		Fields: map[string]json.RawMessage{"name": json.RawMessage(`"Customer"`), "assigned_reps": json.RawMessage(`["u-1"]`)}}}); err != nil {
		b.Fatal(err)
	}
	rep := engine.Actor{Org: "org-1", User: "u-1", Roles: []string{"rep"}}
	doc, _ := json.Marshal(map[string]any{"customer_id": "c-1", "text": "first"})
	if _, err := eng.Push(ctx, rep, engine.PushRequest{DeviceID: "phone", Mutations: []engine.Mutation{
		{ID: "create", Collection: "customer_notes", DocID: "n-1", Op: engine.OpCreate, Doc: doc}}}); err != nil {
		b.Fatal(err)
	}
	r := engine.Retention{History: 90 * 24 * time.Hour, Wait: 10 * time.Minute}
	lastRun := t
	version := int64(1)
	for i := 0; i < edits/batch; i++ {
		req := engine.PushRequest{DeviceID: "phone"}
		for k := range batch {
			text, _ := json.Marshal(fmt.Sprintf("Edit %d: the plant manager now wants %d motors and a delivery slot before the shutdown week.", i*batch+k, k))
			req.Mutations = append(req.Mutations, engine.Mutation{ID: fmt.Sprintf("e-%06d", i*batch+k), Collection: "customer_notes",
				DocID: "n-1", Op: engine.OpUpdate, BaseVersion: version, Fields: map[string]json.RawMessage{"text": text}})
			version++
		}
		outs, err := eng.Push(ctx, rep, req)
		if err != nil || outs[batch-1].Status != engine.StatusApplied {
			b.Fatalf("push %d: %v %+v", i, err, outs[batch-1])
		}
		t = t.Add(step)
		if compact && t.Sub(lastRun) >= 24*time.Hour {
			if _, err := st.Compact(ctx, t, r); err != nil {
				b.Fatal(err)
			}
			lastRun = t
		}
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var pages, free, size, outcomes, feed, docs int64
	for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &size,
		"SELECT COUNT(*) FROM mutations": &outcomes, "SELECT COUNT(*) FROM feed": &feed, "SELECT COUNT(*) FROM docs": &docs} {
		if err := db.QueryRow(q).Scan(v); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	b.ReportMetric(float64((pages-free)*size), "bytes-used")
	b.ReportMetric(float64(outcomes), "outcome-rows")
	b.ReportMetric(float64(feed), "feed-rows")
	b.ReportMetric(float64(docs), "doc-rows")
}
