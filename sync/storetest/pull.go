package storetest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// wantFeed checks that got delivers exactly want ("collection/id", in commit
// order) with strictly increasing seqs.
func wantFeed(f *fixture, what string, got []engine.Change, want []string) {
	f.t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			f.t.Errorf("%s: seq %d of %s/%s follows seq %d: not in commit order", what,
				got[i].Seq, got[i].Collection, got[i].ID, got[i-1].Seq)
			break
		}
	}
	g := ids(got)
	if slices.Equal(g, want) {
		return
	}
	count := map[string]int{}
	for _, id := range g {
		count[id]++
	}
	var dups, missing []string
	for _, id := range want {
		switch count[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			dups = append(dups, id)
		}
	}
	f.t.Errorf("%s: got %d changes, want %d; duplicated %v, missing %v (order or extra changes differ otherwise)",
		what, len(g), len(want), dups, missing)
}

// testPaging: pages are bounded by count and bytes, come in commit order,
// and together deliver everything once; checkpoints are tamper-proof and
// bound to their user; limits are enforced.
func testPaging(f *fixture) {
	t := f.t
	filler := strings.Repeat("Wants 40 motors in March, call before the trade fair. ", 6)
	var want []string
	for b := range 5 {
		muts := make([]engine.Mutation, 0, 50)
		for i := range 50 {
			n := b*50 + i
			id := fmt.Sprintf("n-%03d", n)
			muts = append(muts, createNote(fmt.Sprintf("m-%03d", n), id, fmt.Sprintf("%03d %s", n, filler)))
			want = append(want, notes+"/"+id)
		}
		device := devA
		if b%2 == 1 {
			device = devB
		}
		for _, o := range f.push(f.eng, rep1, device, muts...) {
			if o.Status != engine.StatusApplied {
				t.Fatalf("seeding: %s", mustJSON(o))
			}
		}
	}

	// 250 notes, limit 100: three pages.
	var got []engine.Change
	cp := ""
	for i, w := range []struct {
		n    int
		more bool
	}{{100, true}, {100, true}, {50, false}} {
		res := f.pull(f.eng, rep1, cp, 100)
		if len(res.Changes) != w.n || res.HasMore != w.more {
			t.Errorf("page %d: %d changes, has_more %v; want %d, %v", i+1, len(res.Changes), res.HasMore, w.n, w.more)
		}
		got = append(got, res.Changes...)
		cp = res.Checkpoint
	}
	wantFeed(f, "limit 100", got, want)
	if res := f.pull(f.eng, rep1, cp, 100); len(res.Changes) != 0 || res.HasMore {
		t.Errorf("pull past the end: %d changes, has_more %v", len(res.Changes), res.HasMore)
	}

	// Limit 0 takes the default page size; out-of-range limits are refused.
	if res := f.pull(f.eng, rep1, "", 0); len(res.Changes) != engine.DefaultLimits.PageSize || !res.HasMore {
		t.Errorf("limit 0: %d changes, has_more %v; want the default page of %d", len(res.Changes), res.HasMore,
			engine.DefaultLimits.PageSize)
	}
	for _, limit := range []int{engine.DefaultLimits.MaxPageSize + 1, -1} {
		_, err := f.eng.Pull(f.ctx, rep1, engine.PullRequest{Limit: limit})
		wantErrCode(t, fmt.Sprintf("limit %d", limit), err, engine.KindInvalid, engine.CodeLimitOutOfRange)
	}

	// A byte budget: each page stops right after the note that crosses it.
	const budget = 2000
	small := f.engine(engine.Limits{PageBytes: budget})
	got, cp = nil, ""
	for page := 1; ; page++ {
		res := f.pull(small, rep1, cp, 0)
		if len(res.Changes) == 0 {
			t.Fatalf("byte-bounded page %d is empty", page)
		}
		before := 0
		for _, c := range res.Changes[:len(res.Changes)-1] {
			before += len(c.Body)
		}
		total := before + len(res.Changes[len(res.Changes)-1].Body)
		if before > budget {
			t.Errorf("page %d went on after crossing the %d-byte budget (%d bytes before its last change)", page, budget, before)
		}
		if res.HasMore && total <= budget {
			t.Errorf("page %d stopped at %d bytes, before crossing the %d-byte budget", page, total, budget)
		}
		if res.Bytes != total {
			t.Errorf("page %d reports %d bytes, its bodies hold %d", page, res.Bytes, total)
		}
		got = append(got, res.Changes...)
		cp = res.Checkpoint
		if !res.HasMore {
			break
		}
		if page > len(want) {
			t.Fatalf("byte-bounded paging does not end")
		}
	}
	wantFeed(f, "page bytes 2000", got, want)

	// A document larger than the whole budget still comes, one per page.
	tiny := f.engine(engine.Limits{PageBytes: 10})
	cp = ""
	for i := range 3 {
		res := f.pull(tiny, rep1, cp, 50)
		if len(res.Changes) != 1 || res.Changes[0].ID != fmt.Sprintf("n-%03d", i) || !res.HasMore {
			t.Errorf("10-byte budget, page %d = %v has_more %v; want n-%03d alone", i+1, ids(res.Changes), res.HasMore, i)
		}
		cp = res.Checkpoint
	}

	// Checkpoints: signed, bound to org and user, keyed per store.
	first := f.pull(f.eng, rep1, "", 100)
	if res := f.pull(small, rep1, first.Checkpoint, 1); len(res.Changes) != 1 || res.Changes[0].ID != "n-100" {
		t.Errorf("another engine on the same store: pull from page 1's checkpoint = %v, want n-100", ids(res.Changes))
	}
	enc, sig, ok := strings.Cut(first.Checkpoint, ".")
	if !ok {
		t.Fatalf("checkpoint %q has no signature part", first.Checkpoint)
	}
	flip := func(s string) string {
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	other := f.engineOnAnotherStore()
	bad := map[string]string{
		"payload flipped":      flip(enc) + "." + sig,
		"signature flipped":    enc + "." + flip(sig),
		"signature dropped":    enc,
		"garbage":              "not-a-checkpoint",
		"garbage with a dot":   "bm90.aXQ",
		"another user's":       f.pull(f.eng, rep2, "", 10).Checkpoint,
		"same user, other org": f.pull(f.eng, engine.Actor{Org: otherOrg, User: rep1.User, Roles: rep1.Roles}, "", 10).Checkpoint,
		"another database's":   f.pullFresh(other, rep1),
	}
	for name, cp := range bad {
		_, err := f.eng.Pull(f.ctx, rep1, engine.PullRequest{Checkpoint: cp, Limit: 10})
		wantErrCode(t, name+" checkpoint", err, engine.KindInvalid, engine.CodeBadCheckpoint)
	}
}

// engineOnAnotherStore returns an engine over a second, independent store, to
// prove that checkpoints are signed with a per-database key.
func (f *fixture) engineOnAnotherStore() *engine.Engine {
	f.t.Helper()
	h := f.open(f.t)
	e, err := engine.New(f.ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: h.Store, Schemas: f.schemas, Now: clock})
	if err != nil {
		f.t.Fatalf("engine.New on a second store: %v", err)
	}
	return e
}

// pullFresh pulls from the very start of the feed, fixture included.
func (f *fixture) pullFresh(e *engine.Engine, a engine.Actor) string {
	f.t.Helper()
	res, err := e.Pull(f.ctx, a, engine.PullRequest{Limit: 10})
	if err != nil {
		f.t.Fatalf("pull as %s/%s: %v", a.Org, a.User, err)
	}
	return res.Checkpoint
}

// storePull calls Store.Pull directly, to see seqs and several scopes.
func (f *fixture) storePull(q engine.PullQuery) ([]engine.Change, bool) {
	f.t.Helper()
	pg, err := f.store.Pull(f.ctx, q)
	if err != nil {
		f.t.Fatalf("store pull %+v: %v", q, err)
	}
	changes, more := pg.Changes, pg.More
	if len(changes) > q.Limit {
		f.t.Fatalf("store pull with limit %d returned %d changes", q.Limit, len(changes))
	}
	if more && len(changes) == 0 {
		f.t.Fatalf("store pull returned an empty page with more")
	}
	seen := map[string]bool{}
	for _, c := range changes {
		k := c.Collection + "/" + c.ID
		if seen[k] {
			f.t.Errorf("store pull page %v holds %s twice", ids(changes), k)
		}
		seen[k] = true
	}
	return changes, more
}

// storePullAll pages through Store.Pull from after and returns every change
// and the last seq delivered.
func (f *fixture) storePullAll(q engine.PullQuery) ([]engine.Change, int64) {
	f.t.Helper()
	var all []engine.Change
	for range 10000 {
		page, more := f.storePull(q)
		for _, c := range page {
			q.After = max(q.After, c.Seq)
		}
		all = append(all, page...)
		if !more {
			return all, q.After
		}
	}
	f.t.Fatalf("store pull did not reach the end after 10000 pages")
	return nil, 0
}

// testMultiScopePull: a pull over several scope keys merges their feeds in
// seq order, gives a document that sits in two of them once, pages over
// them without losing or repeating anything, and turns an eviction from one
// key into nothing when another key still holds the document.
func testMultiScopePull(f *fixture) {
	t := f.t
	ua := engine.Actor{Org: org, User: "u-a", Roles: []string{"rep"}}
	ub := engine.Actor{Org: org, User: "u-b", Roles: []string{"rep"}}
	custAB := map[string]any{"name": "Acme Motors", "assigned_reps": []string{"u-a", "u-b"}}
	custB := map[string]any{"name": "Bravo Pumps", "assigned_reps": []string{"u-b"}}
	custX := map[string]any{"name": "Xylo Drives", "assigned_reps": []string{"u-x"}}
	custA := map[string]any{"name": "Alpha Cables", "assigned_reps": []string{"u-a"}}
	custBB := map[string]any{"name": "Beta Switchgear", "assigned_reps": []string{"u-b"}}
	steps := []struct {
		actor engine.Actor
		m     engine.Mutation
	}{
		{admin, create("m-a", fieldsales.CollCustomers, "cust-a", custA)},
		{admin, create("m-bb", fieldsales.CollCustomers, "cust-bb", custBB)},
		{ua, createNoteOn("m-1", "a-1", "cust-a", "A's first")},
		{ub, createNoteOn("m-1", "b-1", "cust-bb", "B's first")},
		{admin, create("m-1", fieldsales.CollCustomers, "cust-ab", custAB)},
		{ua, createNoteOn("m-2", "a-2", "cust-a", "A's second")},
		{admin, create("m-2", fieldsales.CollCustomers, "cust-b", custB)},
		{ub, createNoteOn("m-2", "b-2", "cust-bb", "B's second")},
		{ua, createNoteOn("m-3", "a-3", "cust-a", "A's third")},
		{admin, create("m-3", fieldsales.CollCustomers, "cust-x", custX)},
	}
	for _, s := range steps {
		if o := f.push(f.eng, s.actor, devA, s.m)[0]; o.Status != engine.StatusApplied {
			t.Fatalf("seeding: %s", mustJSON(o))
		}
	}
	want := []string{"customers/cust-a", "customers/cust-bb", notes + "/a-1", notes + "/b-1", "customers/cust-ab", notes + "/a-2", "customers/cust-b",
		notes + "/b-2", notes + "/a-3"}
	ab := []string{fieldsales.UserScope("u-a"), fieldsales.UserScope("u-b")}
	ba := []string{fieldsales.UserScope("u-b"), fieldsales.UserScope("u-a")}

	all, more := f.storePull(engine.PullQuery{Org: org, Scopes: ab, Limit: 100, MaxBytes: 1 << 20})
	if more {
		t.Errorf("one page over two scopes says more remain")
	}
	wantFeed(f, "two scopes, one page", all, want)
	if len(all) == 0 {
		t.Fatalf("nothing pulled over two scopes")
	}
	if i := slices.Index(ids(all), "customers/cust-ab"); i >= 0 {
		wantPut(t, all[i], "customers", "cust-ab", 1, custAB)
	}
	last := all[len(all)-1].Seq

	for _, scopes := range [][]string{ab, ba} {
		for _, limit := range []int{1, 2, 3, 4, 6} {
			got, _ := f.storePullAll(engine.PullQuery{Org: org, Scopes: scopes, Limit: limit, MaxBytes: 1 << 20})
			wantFeed(f, fmt.Sprintf("scopes %v, limit %d", scopes, limit), got, want)
		}
		// A one-byte budget: every page is the single change that crosses it.
		q := engine.PullQuery{Org: org, Scopes: scopes, Limit: 100, MaxBytes: 1}
		var got []engine.Change
		for range len(want) + 1 {
			page, more := f.storePull(q)
			if len(page) > 1 {
				t.Errorf("scopes %v, 1-byte budget: page %v, want one change", scopes, ids(page))
			}
			got = append(got, page...)
			if len(page) > 0 {
				q.After = page[len(page)-1].Seq
			}
			if !more {
				break
			}
		}
		wantFeed(f, fmt.Sprintf("scopes %v, 1-byte budget", scopes), got, want)
	}

	// Reassignments between the two keys: cust-ab leaves u-a but stays with
	// u-b, cust-b moves from u-b to u-a and then changes again. The reader
	// of both keys still sees both customers and must get puts, each once.
	for _, m := range []engine.Mutation{
		update("m-4", fieldsales.CollCustomers, "cust-ab", 1, map[string]any{"assigned_reps": []string{"u-b"}}),
		update("m-5", fieldsales.CollCustomers, "cust-b", 1, map[string]any{"assigned_reps": []string{"u-a"}}),
		update("m-6", fieldsales.CollCustomers, "cust-b", 2, map[string]any{"name": "Bravo Pumps Ltd"}),
	} {
		if o := f.push(f.eng, admin, devA, m)[0]; o.Status != engine.StatusApplied {
			t.Fatalf("reassigning: %s", mustJSON(o))
		}
	}
	movedAB := map[string]any{"name": "Acme Motors", "assigned_reps": []string{"u-b"}}
	movedB := map[string]any{"name": "Bravo Pumps Ltd", "assigned_reps": []string{"u-a"}}
	for _, scopes := range [][]string{ab, ba} {
		page, more := f.storePull(engine.PullQuery{Org: org, Scopes: scopes, After: last, Limit: 100, MaxBytes: 1 << 20})
		if len(page) != 2 || more {
			t.Errorf("scopes %v after reassignments: %v (more %v), want cust-ab and cust-b once each", scopes, ids(page), more)
			continue
		}
		wantPut(t, page[0], "customers", "cust-ab", 2, movedAB)
		wantPut(t, page[1], "customers", "cust-b", 3, movedB)
		// Paged one change at a time the reader may be told to drop cust-b
		// before getting it back, but it must end with both customers.
		got, _ := f.storePullAll(engine.PullQuery{Org: org, Scopes: scopes, After: last, Limit: 1, MaxBytes: 1 << 20})
		state := map[string]engine.Change{}
		for _, c := range got {
			state[c.Collection+"/"+c.ID] = c
		}
		if len(state) != 2 {
			t.Errorf("scopes %v, limit 1 after reassignments: %v, want cust-ab and cust-b", scopes, ids(got))
			continue
		}
		wantPut(t, state["customers/cust-ab"], "customers", "cust-ab", 2, movedAB)
		wantPut(t, state["customers/cust-b"], "customers", "cust-b", 3, movedB)
	}

	// A document leaving both keys in one write is one eviction, not two.
	_, mark := f.storePullAll(engine.PullQuery{Org: org, Scopes: ab, After: last, Limit: 5, MaxBytes: 1 << 20})
	both := map[string]any{"name": "Delta Gears", "assigned_reps": []string{"u-a", "u-b"}}
	for _, m := range []engine.Mutation{
		create("m-7", fieldsales.CollCustomers, "cust-both", both),
		update("m-8", fieldsales.CollCustomers, "cust-both", 1, map[string]any{"assigned_reps": []string{"u-x"}}),
	} {
		if o := f.push(f.eng, admin, devA, m)[0]; o.Status != engine.StatusApplied {
			t.Fatalf("assigning away: %s", mustJSON(o))
		}
	}
	for _, scopes := range [][]string{ab, ba} {
		page, _ := f.storePull(engine.PullQuery{Org: org, Scopes: scopes, After: mark, Limit: 100, MaxBytes: 1 << 20})
		if len(page) != 1 || page[0].ID != "cust-both" || !page[0].Evicted || len(page[0].Body) != 0 {
			t.Errorf("scopes %v after cust-both left both: %+v, want one eviction of cust-both", scopes, page)
		}
	}
}

// testQuietScope: a pull of a scope that had no change while others did
// reaches past the others' changes (PullPage.Through), so the checkpoint
// of a quiet device keeps up with the organisation; and an engine pull
// seals that position.
func testQuietScope(f *fixture) {
	t := f.t
	wantOutcome(t, f.push(f.eng, rep1, devA, createNoteOn("m-q1", "q-1", cust1, "rep1's"))[0], "m-q1", engine.StatusApplied, 1)
	_, cp := f.pullAll(f.eng, rep1, f.start[actorKey(rep1)], 100)
	for i := range 3 {
		mid, id := fmt.Sprintf("m-q2-%d", i), fmt.Sprintf("q-2-%d", i)
		wantOutcome(t, f.push(f.eng, rep2, devB, createNoteOn(mid, id, cust2, "rep2's"))[0], mid, engine.StatusApplied, 1)
	}
	all, _ := f.storePull(engine.PullQuery{Org: org, Scopes: []string{fieldsales.ScopeOrg}, Limit: 1000})
	last := all[len(all)-1].Seq
	var mine int64
	for _, c := range all {
		if c.ID == "q-1" {
			mine = c.Seq
		}
	}
	pg, err := f.store.Pull(f.ctx, engine.PullQuery{Org: org, Scopes: []string{fieldsales.CustomerScope(cust1)}, After: mine, Limit: 10})
	if err != nil || len(pg.Changes) != 0 || pg.More || pg.Through < last {
		t.Fatalf("quiet scope after seq %d: %d changes, more %v, through %d, %v; want nothing, through >= %d (rep2's last note)",
			mine, len(pg.Changes), pg.More, pg.Through, err, last)
	}
	// Through never moves a busy scope past a change it did not return.
	pg, err = f.store.Pull(f.ctx, engine.PullQuery{Org: org, Scopes: []string{fieldsales.CustomerScope(cust2)}, After: mine, Limit: 1})
	if err != nil || len(pg.Changes) != 1 || !pg.More || pg.Through != pg.Changes[0].Seq {
		t.Fatalf("busy scope, one per page: %+v, %v; want one change, more, through at it", pg, err)
	}
	// The engine seals the position: the next pull of rep1 starts past
	// rep2's notes and finds nothing.
	res, err := f.eng.Pull(f.ctx, rep1, engine.PullRequest{Checkpoint: cp, Limit: 10})
	if err != nil || len(res.Changes) != 0 || res.HasMore {
		t.Fatalf("rep1's quiet pull: %+v, %v", res, err)
	}
	seq, _, err := f.eng.Position(rep1, res.Checkpoint)
	if err != nil || seq < last {
		t.Errorf("rep1's checkpoint after a quiet pull is at %d (%v), want >= %d", seq, err, last)
	}
}
