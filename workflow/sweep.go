package workflow

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Sweep escalates every follow-up past its due time that is neither done,
// cancelled nor escalated yet: it sets escalated_at, which gives the
// accountable role the follow-up (and its order) in its feed. Each write is
// conditional on escalated_at being absent, so sweeps running at once on
// several instances escalate each follow-up once; running it again changes
// nothing. It also carries out what unsettled orders and done follow-ups
// ask for: a push or a back-office action cut by a crash, or a routing that
// failed and was never retried. It returns how many follow-ups it
// escalated.
//
// It reads three index keys of the engine's feed: fieldsales.IndexOpenFollowUps,
// fieldsales.IndexUnsettledOrders and fieldsales.IndexUnsettledFollowUps. A document
// leaves an index as an eviction row, and the feed keeps those, so reading an
// index from the start every time
// would cost every follow-up and order the organisation ever had. The sweep
// keeps, per organisation and index, the position it read up to and the
// documents still in the index: each sweep reads only what changed since,
// and holds in memory only what is pending (after a restart it reads the
// index once from the start).
func (s *Service) Sweep(ctx context.Context) (int, error) {
	orgs, err := s.cfg.Store.WorkflowOrgs(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, org := range orgs {
		n, err := s.sweepOrg(ctx, org)
		total += n
		if err != nil {
			return total, err
		}
		if err := s.routeStranded(ctx, org); err != nil {
			return total, err
		}
	}
	return total, nil
}

// indexView is what a sweep knows of one index key of one organisation.
type indexView struct {
	mu    sync.Mutex // one sweep of the index at a time on this instance
	after int64
	live  map[string]json.RawMessage // document id -> body, while in the index
}

func (s *Service) view(org, key string) *indexView {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.views == nil {
		s.views = map[string]*indexView{}
	}
	v := s.views[org+"\x1f"+key]
	if v == nil {
		v = &indexView{live: map[string]json.RawMessage{}}
		s.views[org+"\x1f"+key] = v
	}
	return v
}

// catchUp reads the index's changes since the view's position into it.
// The caller holds v.mu.
func (s *Service) catchUp(ctx context.Context, org, key, collection string, v *indexView) error {
	for {
		pg, err := s.cfg.Docs.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{key},
			After: v.after, Limit: listPullPage, MaxBytes: 8 << 20})
		if err != nil {
			return err
		}
		if pg.Compacted {
			// The view fell below the history the store keeps (retention):
			// build it again from the start of the index.
			clear(v.live)
			v.after = 0
			continue
		}
		for _, c := range pg.Changes {
			if c.Deleted || c.Evicted || c.Collection != collection {
				delete(v.live, c.ID)
				continue
			}
			v.live[c.ID] = c.Body
		}
		if !pg.More || pg.Through <= v.after {
			v.after = max(v.after, pg.Through)
			return nil
		}
		v.after = pg.Through
	}
}

func (s *Service) sweepOrg(ctx context.Context, org string) (int, error) {
	v := s.view(org, fieldsales.IndexOpenFollowUps)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := s.catchUp(ctx, org, fieldsales.IndexOpenFollowUps, fieldsales.CollFollowUps, v); err != nil {
		return 0, err
	}
	now := s.now()
	overdue := func(body map[string]any) bool {
		due, err := time.Parse(time.RFC3339Nano, str(body, "due_at"))
		return err == nil && now.After(due) && body["escalated_at"] == nil
	}
	var refs []engine.DocRef
	for id, b := range v.live {
		if overdue(decode(&engine.Document{Body: b})) {
			refs = append(refs, engine.DocRef{Collection: fieldsales.CollFollowUps, ID: id})
		}
	}
	slices.SortFunc(refs, func(a, b engine.DocRef) int { return strings.Compare(a.ID, b.ID) })
	escalated := 0
	for start := 0; start < len(refs); start += 100 {
		// The escalation appends to the history, so it is written from the
		// follow-up as it is now, at that version: one that changed since
		// (claimed a moment ago) is refused and escalated by the next sweep.
		chunk := refs[start:min(start+100, len(refs))]
		got, err := s.cfg.Docs.Get(ctx, org, chunk)
		if err != nil {
			return escalated, err
		}
		var docs []engine.UpsertDoc
		for _, ref := range chunk {
			d := got[ref]
			if d == nil || d.Deleted {
				continue
			}
			body := decode(d)
			if st := str(body, "status"); st == FUDone || st == FUCancelled || !overdue(body) {
				continue
			}
			docs = append(docs, engine.UpsertDoc{Collection: fieldsales.CollFollowUps, ID: ref.ID,
				Fields: map[string]json.RawMessage{"escalated_at": raw(stamp(now)),
					"history": withEvent(body, event(now, HistEscalated, "", ""))},
				Expect: &engine.Expect{Field: "escalated_at", In: []string{""}, Version: d.Version}})
		}
		if len(docs) == 0 {
			continue
		}
		outs, err := s.cfg.Writer.Upsert(ctx, system(org), "sweep", docs)
		if err != nil {
			return escalated, err
		}
		for _, o := range outs {
			if o.Status != engine.StatusRejected {
				escalated++
			}
		}
	}
	return escalated, nil
}

// routeStranded carries out what the organisation's unsettled orders ask
// for (fieldsales.IndexUnsettledOrders: a push or a workflow run cut by a
// crash, or one whose routing failed and was never retried), then what
// unsettled done follow-ups ask for. Every write is idempotent and
// conditional, so an order whose own push is routing it at this moment is
// routed once.
func (s *Service) routeStranded(ctx context.Context, org string) error {
	if err := s.settleStranded(ctx, org); err != nil {
		return err
	}
	v := s.view(org, fieldsales.IndexUnsettledOrders)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := s.catchUp(ctx, org, fieldsales.IndexUnsettledOrders, fieldsales.CollOrders, v); err != nil {
		return err
	}
	if len(v.live) == 0 {
		return nil
	}
	refs := make([]engine.DocRef, 0, len(v.live))
	for id := range v.live {
		refs = append(refs, engine.DocRef{Collection: fieldsales.CollOrders, ID: id})
	}
	slices.SortFunc(refs, func(a, b engine.DocRef) int { return strings.Compare(a.ID, b.ID) })
	for start := 0; start < len(refs); start += 100 {
		got, err := s.cfg.Docs.Get(ctx, org, refs[start:min(start+100, len(refs))])
		if err != nil {
			return err
		}
		var orders []*engine.Document
		for _, d := range got {
			if !d.Deleted {
				orders = append(orders, d)
			}
		}
		slices.SortFunc(orders, func(a, b *engine.Document) int { return strings.Compare(a.ID, b.ID) })
		if err := s.reconcileOrders(ctx, org, orders); err != nil {
			return err
		}
	}
	return nil
}

// settleStranded carries out the effects of done follow-ups whose
// completion was cut short (fieldsales.IndexUnsettledFollowUps).
func (s *Service) settleStranded(ctx context.Context, org string) error {
	v := s.view(org, fieldsales.IndexUnsettledFollowUps)
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := s.catchUp(ctx, org, fieldsales.IndexUnsettledFollowUps, fieldsales.CollFollowUps, v); err != nil {
		return err
	}
	ids := slices.Sorted(maps.Keys(v.live))
	for _, id := range ids {
		if err := s.afterDone(ctx, org, &engine.Document{Collection: fieldsales.CollFollowUps, ID: id, Body: v.live[id]}); err != nil {
			return err
		}
	}
	return nil
}
