package kpi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/kpi"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// directory is an organisation in Europe/Berlin whose caller is an admin.
type directory struct{}

func (directory) User(_ context.Context, org, id string) (*identity.User, error) {
	roles := []string{identity.RoleRep}
	if id == "boss" {
		roles = []string{identity.RoleAdmin}
	}
	return &identity.User{Org: org, ID: id, Roles: roles}, nil
}
func (directory) ListUsers(context.Context, string, identity.UserFilter) ([]*identity.User, error) {
	return nil, nil
}
func (directory) ListTeams(context.Context, string) ([]*identity.Team, error) { return nil, nil }
func (directory) Org(_ context.Context, id string) (*identity.Org, error) {
	return &identity.Org{ID: id, TimeZone: "Europe/Berlin"}, nil
}

// BenchmarkReport: one rep's 90-day report (5 visits and a plan a day) in
// organisations of 10 and 100 such reps, on SQLite. The cost should follow
// the rep's data, not the organisation's.
func BenchmarkReport(b *testing.B) {
	for _, reps := range []int{10, 100} {
		b.Run(fmt.Sprintf("reps=%d", reps), func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "fs.db"), sqlite.Options{Synchronous: "OFF"})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			sch, err := schemas.Load()
			if err != nil {
				b.Fatal(err)
			}
			eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: st, Schemas: sch})
			if err != nil {
				b.Fatal(err)
			}
			const org, days = "acme", 90
			start := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
			mut := func(id, coll, doc string, args ...any) engine.Mutation {
				return engine.Mutation{ID: "m-" + id, Collection: coll, DocID: id, Op: engine.OpCreate, Doc: json.RawMessage(fmt.Sprintf(doc, args...))}
			}
			admin := engine.Actor{Org: org, User: "boss", Roles: []string{"admin"}}
			for r := range reps {
				rep := fmt.Sprintf("r-%04d", r)
				if _, err := eng.Push(ctx, admin, engine.PushRequest{DeviceID: "console", Mutations: []engine.Mutation{
					mut("c-"+rep, "customers", `{"name":"C","assigned_reps":[%q],"location":{"lat":48.1,"lng":11.5}}`, rep)}}); err != nil {
					b.Fatal(err)
				}
				var muts []engine.Mutation
				for d := range days {
					day := start.AddDate(0, 0, d)
					for k := range 5 {
						in := day.Add(time.Duration(k) * 90 * time.Minute)
						muts = append(muts, mut(fmt.Sprintf("v-%s-%d-%d", rep, d, k), "visit_logs",
							`{"customer_id":"c-%s","check_in":{"at":%q,"lat":48.1,"lng":11.5,"accuracy_m":10},"check_out":{"at":%q}}`,
							rep, in.Format(time.RFC3339), in.Add(45*time.Minute).Format(time.RFC3339)))
					}
					muts = append(muts, mut(fmt.Sprintf("p-%s-%d", rep, d), "visit_plans",
						`{"customer_id":"c-%s","planned_start":%q,"status":"planned"}`, rep, day.Format(time.RFC3339)))
				}
				for lo := 0; lo < len(muts); lo += 500 {
					outs, err := eng.Push(ctx, engine.Actor{Org: org, User: rep, Roles: []string{"rep"}},
						engine.PushRequest{DeviceID: "phone", Mutations: muts[lo:min(lo+500, len(muts))]})
					if err != nil {
						b.Fatal(err)
					}
					for _, o := range outs {
						if o.Status != engine.StatusApplied {
							b.Fatalf("%+v", o)
						}
					}
				}
			}
			svc := kpi.NewService(st, directory{}, nil)
			q := kpi.Query{Rep: "r-0000", From: "2026-09-01", To: "2026-11-29"}
			b.ResetTimer()
			for range b.N {
				r, err := svc.Report(ctx, admin, q)
				if err != nil {
					b.Fatal(err)
				}
				if r.Reps[0].Period.Visits != 5*days {
					b.Fatalf("visits %d", r.Reps[0].Period.Visits)
				}
			}
		})
	}
}
