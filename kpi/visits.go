package kpi

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Visit is one visit log, for a manager's review.
type Visit struct {
	Rep string
	Doc
	Version int64     // set by Reviews.Visit, for the review written back
	CheckIn time.Time // corrected check-in time
}

// Getter reads single documents: the store's Get.
type Getter interface {
	Get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error)
}

// Reviews is the KPI service with a document reader, for the review of one
// visit at a time.
type Reviews struct {
	*Service
	docs Getter
}

// NewReviews returns s reading single visits through docs.
func NewReviews(s *Service, docs Getter) *Reviews { return &Reviews{Service: s, docs: docs} }

// MaxVisits bounds one visit listing (a team's quarter is far below it).
const MaxVisits = 5000

// Visits returns the visit logs checked in during q's period by the reps q
// names, in check-in order, with Report's rule for who may see which reps:
// a manager the reps of the teams they lead, an admin everyone. Another
// organisation's ids answer like unknown ones.
func (s *Service) Visits(ctx context.Context, actor engine.Actor, q Query) ([]Visit, error) {
	reps, p, err := s.scope(ctx, actor, q)
	if err != nil {
		return nil, err
	}
	var out []Visit
	for _, rep := range reps {
		docs, err := s.read(ctx, actor.Org, rep, p)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			if d.Collection != fieldsales.CollVisitLogs {
				continue
			}
			var v struct {
				CheckInAt string `json:"check_in_at"`
			}
			json.Unmarshal(d.Body, &v)
			at, ok := parse(v.CheckInAt)
			if !ok || at.Before(p.Start()) || !at.Before(p.End()) {
				continue
			}
			out = append(out, Visit{Rep: rep, Doc: d, CheckIn: at})
			if len(out) > MaxVisits {
				return nil, invalid("/to", "more than %d visits in the period: ask for a shorter one", MaxVisits)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Visit) int {
		if c := a.CheckIn.Compare(b.CheckIn); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Visit returns one visit log if actor may see its rep (Visits' rule);
// otherwise, as for a missing one, not found.
func (s *Reviews) Visit(ctx context.Context, actor engine.Actor, id string) (*Visit, error) {
	notFound := engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no visit %q", id)
	ref := engine.DocRef{Collection: fieldsales.CollVisitLogs, ID: id}
	got, err := s.docs.Get(ctx, actor.Org, []engine.DocRef{ref})
	if err != nil {
		return nil, err
	}
	d := got[ref]
	if d == nil || d.Deleted || d.Owner == "" {
		return nil, notFound
	}
	today := s.now().UTC().Format(dateLayout)
	if _, _, err := s.scope(ctx, actor, Query{Rep: d.Owner, From: today, To: today}); err != nil {
		if k := engine.ErrorKind(err); k == engine.KindForbidden || k == engine.KindNotFound {
			return nil, notFound
		}
		return nil, err
	}
	var v struct {
		CheckInAt string `json:"check_in_at"`
	}
	json.Unmarshal(d.Body, &v)
	at, _ := parse(v.CheckInAt)
	return &Visit{Rep: d.Owner, Doc: Doc{Collection: d.Collection, ID: d.ID, Body: d.Body}, Version: d.Version, CheckIn: at}, nil
}
