package kpi

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// TestReadKeepsMonthsWithinBudget: the rep-months kept between reports
// (scopeDocs) answer what a fresh read of the store answers, after changes
// too, and the cache stays within its byte budget by dropping the least
// recently read rep-months. On a real SQLite store.
func TestReadKeepsMonthsWithinBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "kpi.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sch, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: st, Schemas: sch})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	reps := []string{"r1", "r2", "r3"}
	admin := engine.Actor{Org: "o", User: "adm", Roles: []string{"admin"}}
	push := func(a engine.Actor, muts ...engine.Mutation) {
		t.Helper()
		outs, err := eng.Push(ctx, a, engine.PushRequest{DeviceID: "d", Mutations: muts})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			if o.Status != engine.StatusApplied {
				t.Fatalf("%+v", o)
			}
		}
	}
	for _, r := range reps {
		c, _ := json.Marshal(map[string]any{"name": "C " + r, "assigned_reps": []string{r}})
		push(admin, engine.Mutation{ID: "c-" + r, Collection: "customers", DocID: "c-" + r, Op: engine.OpCreate, Doc: c})
		var muts []engine.Mutation
		for i := range 20 {
			in := now.Add(-time.Duration(i+1) * time.Minute)
			v, _ := json.Marshal(map[string]any{"customer_id": "c-" + r, "notes": fmt.Sprintf("visit %d of %s", i, r),
				"check_in": map[string]any{"at": in.Format(time.RFC3339)}, "check_out": map[string]any{"at": in.Add(30 * time.Second).Format(time.RFC3339)}})
			muts = append(muts, engine.Mutation{ID: fmt.Sprintf("v-%s-%d", r, i), Collection: "visit_logs", DocID: fmt.Sprintf("v-%s-%d", r, i), Op: engine.OpCreate, Doc: v})
		}
		push(engine.Actor{Org: "o", User: r, Roles: []string{"rep"}}, muts...)
	}
	p := Period{From: now.AddDate(0, 0, -1), To: now, Loc: time.UTC}
	ids := func(docs []Doc) []string {
		var out []string
		for _, d := range docs {
			out = append(out, d.ID)
		}
		slices.Sort(out)
		return out
	}
	cached := NewService(st, nil, nil)
	cached.maxBytes = 6000 // about one rep-month of these visits
	fresh := func(rep string) []string {
		s := NewService(st, nil, nil)
		docs, err := s.read(ctx, "o", rep, p)
		if err != nil {
			t.Fatal(err)
		}
		return ids(docs)
	}
	check := func(when string) {
		t.Helper()
		for _, r := range reps {
			docs, err := cached.read(ctx, "o", r, p)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := ids(docs), fresh(r); !slices.Equal(got, want) {
				t.Fatalf("%s, %s: cached read %v, fresh read %v", when, r, got, want)
			}
			cached.mu.Lock()
			over := cached.bytes > cached.maxBytes && len(cached.cache) > 1
			sum := 0
			for _, sd := range cached.cache {
				sum += sd.bytes
			}
			n, total := len(cached.cache), cached.bytes
			cached.mu.Unlock()
			if over || sum != total {
				t.Fatalf("%s: %d rep-months, %d bytes kept (sum %d), budget %d", when, n, total, sum, cached.maxBytes)
			}
		}
	}
	check("first reads")
	cached.mu.Lock()
	kept := len(cached.cache)
	cached.mu.Unlock()
	if kept >= len(reps) {
		t.Fatalf("all %d rep-months kept within %d bytes: the budget was not exercised", kept, cached.maxBytes)
	}
	check("again")
	// Changes since: one visit deleted, one added, for r2.
	push(admin, engine.Mutation{ID: "del", Collection: "visit_logs", DocID: "v-r2-3", Op: engine.OpDelete, BaseVersion: 1})
	in := now.Add(-30 * time.Second)
	v, _ := json.Marshal(map[string]any{"customer_id": "c-r2", "check_in": map[string]any{"at": in.Format(time.RFC3339)}})
	push(engine.Actor{Org: "o", User: "r2", Roles: []string{"rep"}}, engine.Mutation{ID: "new", Collection: "visit_logs", DocID: "v-r2-new", Op: engine.OpCreate, Doc: v})
	check("after changes")
}
