package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// BenchmarkScalePull measures what one rep's pull costs in a large
// organisation: 200 reps in 20 teams, 20,000 customers (100 per rep) and
// 480,000 notes and visit logs hanging off them (2,400 per rep), 500,000
// documents in all. The engine runs with the real identity directory on
// the SQLite store, as the server does; HTTP is left out so the figure is
// the server's own time per pull. The organisation is built once into
// $TMPDIR/fieldsync-scale-<docs>/ and reused by later runs (delete it to
// rebuild); FIELDSYNC_SCALE_DOCS makes it smaller.
//
//	go test ./sqlite -run '^$' -bench ScalePull -benchtime 200x
func BenchmarkScalePull(b *testing.B) {
	ctx := context.Background()
	perCustomer := 24
	if v := os.Getenv("FIELDSYNC_SCALE_DOCS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 20_000*2 {
			b.Fatalf("FIELDSYNC_SCALE_DOCS=%q: want at least 40000", v)
		}
		perCustomer = n/20_000 - 1
	}
	const reps, customers, teams = 200, 20_000, 20
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("fieldsync-scale-%d", customers*(perCustomer+1)))
	st, eng := openScale(b, ctx, dir, reps, customers, teams, perCustomer)
	defer st.Close()

	rep := engine.Actor{Org: "org-1", User: "u-007", Roles: []string{"rep"}}
	mgr := engine.Actor{Org: "org-1", User: "m-07", Roles: []string{"manager"}}
	share := (customers / reps) * (perCustomer + 1)

	pullAll := func(a engine.Actor, cp string, limit int) (int, string) {
		n := 0
		for {
			res, err := eng.Pull(ctx, a, engine.PullRequest{Checkpoint: cp, Limit: limit})
			if err != nil {
				b.Fatal(err)
			}
			n += len(res.Changes)
			cp = res.Checkpoint
			if !res.HasMore {
				return n, cp
			}
		}
	}
	// Ten changes to the rep's documents after a checkpoint.
	_, cp := pullAll(rep, "", 1000)
	var muts []engine.Mutation
	for k := range 10 {
		id := fmt.Sprintf("n-%05d-%02d", 7+k*reps, 0) // customers 7, 207, ... are u-007's
		muts = append(muts, engine.Mutation{ID: fmt.Sprintf("inc-%d-%d", time.Now().UnixNano(), k), Collection: "customer_notes",
			DocID: id, Op: engine.OpUpdate, BaseVersion: 1, Fields: map[string]json.RawMessage{"tags": json.RawMessage(`["followup"]`)}})
	}
	outs, err := eng.Push(ctx, rep, engine.PushRequest{DeviceID: "bench-phone", Mutations: muts})
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range outs {
		if o.Status == engine.StatusRejected {
			b.Fatalf("incremental edit: %+v", o.Error)
		}
	}

	b.Run("rep-first-page-200", func(b *testing.B) {
		for b.Loop() {
			res, err := eng.Pull(ctx, rep, engine.PullRequest{Limit: 200})
			if err != nil || len(res.Changes) != 200 {
				b.Fatalf("%d changes, %v", len(res.Changes), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/pull")
	})
	b.Run("rep-first-pull-all", func(b *testing.B) {
		for b.Loop() {
			if n, _ := pullAll(rep, "", 1000); n != share {
				b.Fatalf("pulled %d, want the rep's share %d", n, share)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/share")
		b.ReportMetric(float64(share), "docs/share")
	})
	b.Run("rep-incremental-10", func(b *testing.B) {
		for b.Loop() {
			res, err := eng.Pull(ctx, rep, engine.PullRequest{Checkpoint: cp, Limit: 100})
			if err != nil || len(res.Changes) != 10 || res.HasMore {
				b.Fatalf("%d changes, more %v, %v", len(res.Changes), res.HasMore, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/pull")
	})
	b.Run("manager-first-page-200", func(b *testing.B) {
		for b.Loop() {
			res, err := eng.Pull(ctx, mgr, engine.PullRequest{Limit: 200})
			if err != nil || len(res.Changes) != 200 {
				b.Fatalf("%d changes, %v", len(res.Changes), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/pull")
	})
	// The raw store under the engine: the same page read straight from
	// Store.Pull with the rep's read set.
	b.Run("raw-store-page-200", func(b *testing.B) {
		q := engine.PullQuery{Org: "org-1", Scopes: fieldsales.ReadSet(rep.User, rep.Roles, nil), Limit: 200, MaxBytes: 1 << 20}
		for b.Loop() {
			pg, err := st.Pull(ctx, q)
			page := pg.Changes
			if err != nil || len(page) != 200 {
				b.Fatalf("%d changes, %v", len(page), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/pull")
	})
}

// openScale opens the scale organisation in dir, building it first when
// dir holds none.
func openScale(b *testing.B, ctx context.Context, dir string, reps, customers, teams, perCustomer int) (*sqlite.Store, *engine.Engine) {
	b.Helper()
	sch, err := schemas.Load()
	if err != nil {
		b.Fatal(err)
	}
	built := filepath.Join(dir, "built")
	_, statErr := os.Stat(built)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "fieldsync.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	keys, err := jwtauth.LoadOrCreate(dir)
	if err != nil {
		b.Fatal(err)
	}
	ids, err := identity.New(identity.Config{Store: st, Tokens: keys})
	if err != nil {
		b.Fatal(err)
	}
	eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: st, Schemas: sch, Directory: ids})
	if err != nil {
		b.Fatal(err)
	}
	if statErr == nil {
		return st, eng
	}
	began := time.Now()
	org := "org-1"
	for t := range teams {
		if _, err := ids.AddTeam(ctx, org, fmt.Sprintf("t-%02d", t), fmt.Sprintf("Team %d", t)); err != nil {
			b.Fatal(err)
		}
		if _, err := ids.AddUser(ctx, org, identity.NewUser{ID: fmt.Sprintf("m-%02d", t), Email: fmt.Sprintf("m-%02d@scale.test", t),
			Name: "Manager", Roles: []string{"manager"}, Leads: []string{fmt.Sprintf("t-%02d", t)}}); err != nil {
			b.Fatal(err)
		}
	}
	for r := range reps {
		if _, err := ids.AddUser(ctx, org, identity.NewUser{ID: fmt.Sprintf("u-%03d", r), Email: fmt.Sprintf("u-%03d@scale.test", r),
			Name: "Rep", Roles: []string{"rep"}, Teams: []string{fmt.Sprintf("t-%02d", r%teams)}}); err != nil {
			b.Fatal(err)
		}
	}
	admin := engine.Actor{Org: org, User: "u-admin", Roles: []string{"admin"}}
	const batch = 500
	push := func(muts []engine.Mutation) {
		outs, err := eng.Push(ctx, admin, engine.PushRequest{DeviceID: "scale-loader", Mutations: muts})
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range outs {
			if o.Status != engine.StatusApplied {
				b.Fatalf("load: %+v", o.Error)
			}
		}
	}
	var muts []engine.Mutation
	for c := range customers {
		id := fmt.Sprintf("c-%05d", c)
		doc, _ := json.Marshal(map[string]any{"name": "Customer " + id, "segment": "OEM",
			"assigned_reps": []string{fmt.Sprintf("u-%03d", c%reps)}})
		muts = append(muts, engine.Mutation{ID: "m-" + id, Collection: "customers", DocID: id, Op: engine.OpCreate, Doc: doc})
		if len(muts) == batch {
			push(muts)
			muts = nil
		}
	}
	push(muts)
	// The attached documents, from four loaders at once (group commit).
	work := make(chan []engine.Mutation, 8)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for m := range work {
				push(m)
			}
		})
	}
	muts = nil
	for c := range customers {
		for k := range perCustomer {
			id := fmt.Sprintf("n-%05d-%02d", c, k)
			coll := "customer_notes"
			body := map[string]any{"customer_id": fmt.Sprintf("c-%05d", c), "created_at": "2026-11-29T09:12:00Z",
				"text": "Visit: the plant manager wants 40 IE3 motors (15 kW) and 200 m of 4-core cable by March; asked for a quote."}
			if k%4 == 3 {
				coll, id = "visit_logs", fmt.Sprintf("v-%05d-%02d", c, k)
				body = map[string]any{"customer_id": fmt.Sprintf("c-%05d", c), "outcome": "info",
					"check_in":  map[string]any{"at": "2026-11-29T09:00:00Z"},
					"check_out": map[string]any{"at": "2026-11-29T09:40:00Z"}}
			}
			doc, _ := json.Marshal(body)
			muts = append(muts, engine.Mutation{ID: "m-" + id, Collection: coll, DocID: id, Op: engine.OpCreate, Doc: doc})
			if len(muts) == batch {
				work <- muts
				muts = nil
			}
		}
	}
	if len(muts) > 0 {
		work <- muts
	}
	close(work)
	wg.Wait()
	if err := os.WriteFile(built, []byte(time.Now().Format(time.RFC3339)), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d customers and %d attached documents in %v", customers, customers*perCustomer, time.Since(began).Round(time.Second))
	return st, eng
}
