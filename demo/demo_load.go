package demo

// Loading the demo: the simulated clock, and the loader that carries the
// demo's events out through the engine, the workflow and identity.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// demoClock is the simulated time the engine and the workflow run on
// while the demo month is replayed.
type demoClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *demoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *demoClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// demoLoader carries out the demo's events through the real engine,
// workflow and identity service, on the simulated clock.
type demoLoader struct {
	w     *demoWorld
	clock *demoClock
	store *sqlite.Store
	eng   *engine.Engine
	wf    *workflow.Service
	ids   *identity.Service
	// skipped counts follow-up actions a run left out because the
	// follow-up had moved on already (a second run skips them all).
	skipped int
}

// Result is what a load did and found.
type Result struct {
	w                    *demoWorld
	opts                 Options
	fresh                bool // the organisation was created by this run
	changes              int64
	usersAdded, pwSet    int
	elapsed              time.Duration
	skippedLoad          bool // serve --demo found it complete and did nothing
	visits, orders, fups map[string]int
	reviewed, plans      int
	skipped              int // follow-up actions left out: the follow-up had moved on
	notes                int
}

func (r *Result) changed() bool {
	return r.fresh || r.changes > 0 || r.usersAdded > 0 || r.pwSet > 0
}

// Load loads (or completes, or checks) the demo organisation in
// o.Data. With ifMissing, a demo whose users can sign in already is left
// alone without replaying it (serve --demo).
func Load(ctx context.Context, o Options, progress io.Writer, ifMissing bool) (*Result, error) {
	started := time.Now()
	if err := o.Check(); err != nil {
		return nil, err
	}
	sch, err := schemas.Load()
	if err != nil {
		return nil, err
	}
	keys, err := jwtauth.LoadOrCreate(o.Data)
	if err != nil {
		return nil, err
	}
	// Synchronous NORMAL: a demo is replayed, not acknowledged to phones,
	// so it does not need an fsync per commit (it is still crash-safe).
	st, err := sqlite.Open(ctx, filepath.Join(o.Data, "fieldsync.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		return nil, fmt.Errorf("%w (is a server running on %s? stop it, or use fieldsync serve --demo)", err, o.Data)
	}
	defer st.Close()
	ids, err := identity.New(identity.Config{Store: st, Tokens: keys})
	if err != nil {
		return nil, err
	}
	res := &Result{opts: o}
	org, err := st.Org(ctx, o.Org)
	switch {
	case engine.ErrorKind(err) == engine.KindNotFound:
		name, tz, roles := o.orgName(), demoTimeZone, defaultMatrix().Roles
		if org, err = ids.PutOrg(ctx, o.Org, identity.OrgChange{Name: &name, TimeZone: &tz, Roles: &roles}); err != nil {
			return nil, err
		}
		res.fresh = true
	case err != nil:
		return nil, err
	default:
		m := demoMarker.FindStringSubmatch(org.Name)
		if m == nil {
			return nil, fmt.Errorf("organisation %q exists and is not a demo organisation: choose another --org", o.Org)
		}
		if ifMissing {
			// serve --demo keeps the demo that is there, whatever its shape.
			o.Seed, _ = strconv.ParseUint(m[1], 10, 64)
			o.Days, _ = strconv.Atoi(m[2])
			o.Customers, _ = strconv.Atoi(m[3])
			res.opts = o
		}
		if m[1] != strconv.FormatUint(o.Seed, 10) || m[2] != strconv.Itoa(o.Days) || m[3] != strconv.Itoa(o.Customers) {
			return nil, fmt.Errorf("organisation %q holds the demo of --seed %s --days %s --customers %s: run with those, or choose another --org",
				o.Org, m[1], m[2], m[3])
		}
	}
	loc, err := time.LoadLocation(demoTimeZone)
	if err != nil {
		return nil, fmt.Errorf("time zone %s: %w", demoTimeZone, err)
	}
	// The demo's month ends when its organisation was created (or at the
	// anchor a test chose): a second run, even days later, computes exactly
	// the same documents.
	anchor := org.Created
	if !o.Anchor.IsZero() {
		anchor = o.Anchor
	}
	w := newDemoWorld(o.Org, o.Seed, o.Days, o.Customers, anchor, loc)
	res.w = w
	if ifMissing && !res.fresh {
		if u, err := st.User(ctx, o.Org, "admin"); err == nil && u.PasswordHash != "" {
			res.skippedLoad = true
			res.elapsed = time.Since(started)
			return res, nil
		}
	}
	head0, err := st.Head(ctx, o.Org)
	if err != nil {
		return nil, err
	}
	clock := &demoClock{}
	clock.set(w.first.AddDate(0, 0, -7).Add(7 * time.Hour))
	eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: st, Schemas: sch, Directory: ids, Now: clock.Now})
	if err != nil {
		return nil, err
	}
	wf, err := workflow.New(workflow.Config{Writer: eng, Docs: st, Store: st, Orgs: ids, Directory: ids, Schemas: sch, Now: clock.Now})
	if err != nil {
		return nil, err
	}
	eng.AddHook(wf)
	eng.AddEffects(wf)
	l := &demoLoader{w: w, clock: clock, store: st, eng: eng, wf: wf, ids: ids}
	if err := l.people(ctx, res); err != nil {
		return nil, err
	}
	if err := l.reference(ctx); err != nil {
		return nil, err
	}
	prog := newDemoProgress(progress, len(w.events))
	for _, e := range w.events {
		clock.set(e.At)
		if err := e.Do(ctx, l); err != nil {
			prog.finish()
			return nil, fmt.Errorf("demo event at %s: %w", e.At.Format(time.RFC3339), err)
		}
		prog.step(e.At.In(loc))
	}
	prog.finish()
	// Passwords last: a demo whose users can sign in is a complete one.
	if res.pwSet, err = l.passwords(ctx); err != nil {
		return nil, err
	}
	head1, err := st.Head(ctx, o.Org)
	if err != nil {
		return nil, err
	}
	res.changes = head1 - head0
	res.skipped = l.skipped
	if err := l.summarise(ctx, res); err != nil {
		return nil, err
	}
	res.elapsed = time.Since(started)
	return res, nil
}

// people creates the teams and users that are missing (without passwords:
// those come last).
func (l *demoLoader) people(ctx context.Context, res *Result) error {
	for _, t := range l.w.teams {
		if _, err := l.ids.AddTeam(ctx, l.w.org, t.ID, t.Name); err != nil && engine.ErrorCode(err) != identity.CodeTeamExists {
			return err
		}
	}
	for _, u := range l.w.users {
		_, err := l.ids.User(ctx, l.w.org, u.ID)
		if err == nil {
			continue
		}
		if engine.ErrorKind(err) != engine.KindNotFound {
			return err
		}
		if _, err := l.ids.AddUser(ctx, l.w.org, identity.NewUser{ID: u.ID, Email: u.Email, Name: u.Name, Roles: u.Roles,
			Teams: u.Teams, Leads: u.Leads}); err != nil {
			return fmt.Errorf("add demo user %s: %w", u.Email, err)
		}
		res.usersAdded++
	}
	return nil
}

// passwords gives every demo user without one the demo password, hashing
// as many at once as the identity service allows.
func (l *demoLoader) passwords(ctx context.Context) (int, error) {
	var wg sync.WaitGroup
	errs := make([]error, len(l.w.users))
	set := make([]bool, len(l.w.users))
	for i, u := range l.w.users {
		cur, err := l.ids.User(ctx, l.w.org, u.ID)
		if err != nil {
			return 0, err
		}
		if cur.PasswordHash != "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := Password
			_, errs[i] = l.ids.UpdateUser(ctx, l.w.org, u.ID, identity.UserChange{Password: &pw})
			set[i] = errs[i] == nil
		}()
	}
	wg.Wait()
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// reference writes the catalogue, the price lists and the customers as an
// import would: created when missing, never overwritten (an admin may have
// edited them since).
func (l *demoLoader) reference(ctx context.Context) error {
	var docs []engine.UpsertDoc
	add := func(coll, id string, fields map[string]any) {
		f := map[string]jsonRaw{}
		for k, v := range fields {
			f[k] = mustRaw(v)
		}
		docs = append(docs, engine.UpsertDoc{Collection: coll, ID: id, Fields: f, CreateOnly: true})
	}
	for _, p := range l.w.products {
		add(fieldsales.CollProducts, p.ID, map[string]any{"sku": p.ID, "name": p.Name, "category": p.Category, "unit": p.Unit,
			"list_price": eur(p.Price), "currency": "EUR", "active": p.Active})
	}
	validFrom := time.Date(l.w.first.Year(), 1, 1, 0, 0, 0, 0, l.w.loc).Format("2006-01-02")
	for _, pl := range l.w.lists {
		prices := make(map[string]string, len(pl.Prices))
		for id, p := range pl.Prices {
			prices[id] = eur(p)
		}
		f := map[string]any{"name": pl.Name, "currency": "EUR", "valid_from": validFrom, "prices": prices}
		if pl.Segment != "" {
			f["segment"] = pl.Segment
		}
		add(fieldsales.CollPriceLists, pl.ID, f)
	}
	for _, c := range l.w.customers {
		add(fieldsales.CollCustomers, c.ID, c.doc())
	}
	admin := engine.Actor{Org: l.w.org, User: "admin", Roles: []string{fieldsales.RoleAdmin}}
	size := l.eng.Limits().MaxMutations
	for i := 0; i < len(docs); i += size {
		outs, err := l.eng.Upsert(ctx, admin, "demo", docs[i:min(i+size, len(docs))])
		if err != nil {
			return err
		}
		for j, o := range outs {
			if o.Status == engine.StatusRejected {
				return fmt.Errorf("%s/%s: %s: %s", docs[i+j].Collection, docs[i+j].ID, o.Error.Code, o.Error.Message)
			}
		}
	}
	return nil
}

// actor is a demo user as the engine sees them.
func (l *demoLoader) actor(user string) engine.Actor {
	return engine.Actor{Org: l.w.org, User: user, Roles: l.w.user[user].Roles}
}

// push sends muts from user's phone (a manager's tablet), with the phone's
// clock as device_time. Every mutation must be applied or merged: a
// rejection is a mistake in the demo's plan.
func (l *demoLoader) push(ctx context.Context, user string, muts []engine.Mutation) error {
	u := l.w.user[user]
	device := "phone-" + user
	if slices.Contains(u.Roles, fieldsales.RoleManager) {
		device = "tablet-" + user
	}
	outs, err := l.eng.Push(ctx, l.actor(user), engine.PushRequest{DeviceID: device, Mutations: muts,
		DeviceTime: l.clock.Now().Add(u.Skew).Format(time.RFC3339Nano)})
	if err != nil {
		return err
	}
	for i, o := range outs {
		if o.Status == engine.StatusRejected {
			return fmt.Errorf("%s pushing %s/%s: %s at %s: %s", user, muts[i].Collection, muts[i].DocID, o.Error.Code,
				o.Error.Pointer, o.Error.Message)
		}
	}
	return nil
}

// current reads documents' versions (what the device pulled last).
func (l *demoLoader) current(ctx context.Context, coll string, ids ...string) (map[string]*engine.Document, error) {
	refs := make([]engine.DocRef, len(ids))
	for i, id := range ids {
		refs[i] = engine.DocRef{Collection: coll, ID: id}
	}
	got, err := l.store.Get(ctx, l.w.org, refs)
	if err != nil {
		return nil, err
	}
	out := map[string]*engine.Document{}
	for r, d := range got {
		out[r.ID] = d
	}
	return out, nil
}

// cancelOrder: the rep cancels a submitted order from the phone.
func (l *demoLoader) cancelOrder(ctx context.Context, rep, order string) error {
	cur, err := l.current(ctx, fieldsales.CollOrders, order)
	if err != nil || cur[order] == nil {
		return errors.Join(err, fmt.Errorf("order %s to cancel is missing", order))
	}
	return l.push(ctx, rep, []engine.Mutation{updateMut(order+"-cancel", fieldsales.CollOrders, order, cur[order].Version,
		map[string]any{"status": "cancelled"})})
}

// review: a manager's review session of visit logs.
func (l *demoLoader) review(ctx context.Context, mgr string, ids []string, reviews map[string]map[string]any) error {
	cur, err := l.current(ctx, fieldsales.CollVisitLogs, ids...)
	if err != nil {
		return err
	}
	var muts []engine.Mutation
	for _, id := range ids {
		if d := cur[id]; d != nil {
			muts = append(muts, updateMut(id+"-review", fieldsales.CollVisitLogs, id, d.Version, map[string]any{"review": reviews[id]}))
		}
	}
	if len(muts) == 0 {
		return nil
	}
	return l.push(ctx, mgr, muts)
}

// act: a back-office user (or a manager) works a follow-up through the
// workflow's API, if it is still in the state the plan expects.
func (l *demoLoader) act(ctx context.Context, user, id, before string, a workflow.Action) error {
	cur, err := l.current(ctx, fieldsales.CollFollowUps, id)
	if err != nil {
		return err
	}
	d := cur[id]
	if d == nil || jsonField(d.Body, "status") != before {
		l.skipped++
		return nil
	}
	if _, err := l.wf.Act(ctx, l.actor(user), id, a); err != nil {
		return fmt.Errorf("%s: %s %s: %w", user, a.Kind, id, err)
	}
	return nil
}

// sweep escalates overdue follow-ups, as serve does every minute.
func (l *demoLoader) sweep(ctx context.Context) error {
	_, err := l.wf.Sweep(ctx)
	return err
}

// summarise reads the demo's documents back and counts them by state.
func (l *demoLoader) summarise(ctx context.Context, res *Result) error {
	res.visits, res.orders, res.fups = map[string]int{}, map[string]int{}, map[string]int{}
	count := func(coll string, ids []string, each func(body []byte)) error {
		for i := 0; i < len(ids); i += 500 {
			got, err := l.current(ctx, coll, ids[i:min(i+500, len(ids))]...)
			if err != nil {
				return err
			}
			for _, d := range got {
				if !d.Deleted {
					each(d.Body)
				}
			}
		}
		return nil
	}
	err := count(fieldsales.CollVisitLogs, l.w.visitIDs, func(b []byte) {
		res.visits[jsonField(b, "verification", "status")]++
		if jsonField(b, "review", "status") != "" {
			res.reviewed++
		}
	})
	if err == nil {
		err = count(fieldsales.CollOrders, l.w.orderIDs, func(b []byte) { res.orders[jsonField(b, "status")]++ })
	}
	var fus []string
	for _, o := range l.w.orderIDs {
		for _, a := range []string{"credit_release", "price_approval", "availability_check", "erp_entry", "dispatch", "delivery", "invoice"} {
			fus = append(fus, workflow.FollowUpID(o, a))
		}
	}
	fus = append(fus, l.w.raisedIDs...)
	if err == nil {
		err = count(fieldsales.CollFollowUps, fus, func(b []byte) { res.fups[jsonField(b, "status")]++ })
	}
	if err == nil {
		err = count(fieldsales.CollVisitPlans, l.w.planIDs, func([]byte) { res.plans++ })
	}
	if err == nil {
		err = count(fieldsales.CollCustomerNotes, l.w.noteIDs, func([]byte) { res.notes++ })
	}
	return err
}
