package kpi

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Feed reads the change feed under some scope keys: the store's Pull.
type Feed interface {
	Pull(ctx context.Context, q engine.PullQuery) (engine.PullPage, error)
}

// Directory is what the service needs to know about users, teams and the
// organisation: identity.Service.
type Directory interface {
	User(ctx context.Context, org, id string) (*identity.User, error)
	ListUsers(ctx context.Context, org string, f identity.UserFilter) ([]*identity.User, error)
	ListTeams(ctx context.Context, org string) ([]*identity.Team, error)
	Org(ctx context.Context, id string) (*identity.Org, error)
}

// MaxDays is the longest period a report covers (a quarter): it bounds what
// one request reads.
const MaxDays = 92

// maxTeamReps bounds the reps of one team report.
const maxTeamReps = 200

// Service answers KPI requests.
type Service struct {
	feed Feed
	dir  Directory
	now  func() time.Time

	mu    sync.Mutex
	cache map[string]*scopeDocs // org and index key -> its documents (read)
	bytes int                   // of every cached body
	// maxBytes bounds bytes (cacheBytes; tests lower it).
	maxBytes int
}

// NewService returns a service reading feed (the store) and dir; now is
// the clock (time.Now when nil).
func NewService(feed Feed, dir Directory, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{feed: feed, dir: dir, now: now, cache: map[string]*scopeDocs{}, maxBytes: cacheBytes}
}

// Query is a KPI request: one rep or one team, and a period of calendar
// days (YYYY-MM-DD, inclusive) in the organisation's time zone.
type Query struct {
	Rep, Team string
	From, To  string
}

func invalid(pointer, format string, args ...any) error {
	return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, pointer, format, args...)
}

// Report returns the KPIs asked for, as actor sees them: an admin any rep
// or team of the organisation, a manager the reps of the teams they lead,
// a rep themself. Another organisation's ids answer like unknown ones.
func (s *Service) Report(ctx context.Context, actor engine.Actor, q Query) (*Report, error) {
	reps, p, err := s.scope(ctx, actor, q)
	if err != nil {
		return nil, err
	}
	docs := map[string][]Doc{}
	for _, rep := range reps {
		d, err := s.read(ctx, actor.Org, rep, p)
		if err != nil {
			return nil, err
		}
		docs[rep] = d
	}
	r := Build(p, reps, docs, s.now())
	return &r, nil
}

// scope returns the reps and the period q asks for, refusing reps actor may
// not see (Report's rule).
func (s *Service) scope(ctx context.Context, actor engine.Actor, q Query) ([]string, Period, error) {
	if (q.Rep == "") == (q.Team == "") {
		return nil, Period{}, invalid("/rep", "ask for exactly one of rep=ID or team=ID")
	}
	o, err := s.dir.Org(ctx, actor.Org)
	if err != nil {
		return nil, Period{}, err
	}
	loc, err := time.LoadLocation(o.TimeZone)
	if err != nil || o.TimeZone == "" {
		loc = time.UTC
	}
	p, err := period(q.From, q.To, loc)
	if err != nil {
		return nil, Period{}, err
	}
	roles, leads, err := s.caller(ctx, actor)
	if err != nil {
		return nil, Period{}, err
	}
	admin := slices.Contains(roles, identity.RoleAdmin)
	var reps []string
	if q.Rep != "" {
		u, err := s.dir.User(ctx, actor.Org, q.Rep)
		if err != nil {
			return nil, Period{}, err // not found, in this organisation
		}
		leadsRep := slices.Contains(roles, identity.RoleManager) && slices.ContainsFunc(u.Teams, func(t string) bool { return slices.Contains(leads, t) })
		if !admin && u.ID != actor.User && !leadsRep {
			return nil, Period{}, engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "/rep", "%s is not on a team you lead", q.Rep)
		}
		reps = []string{u.ID}
	} else {
		teams, err := s.dir.ListTeams(ctx, actor.Org)
		if err != nil {
			return nil, Period{}, err
		}
		if !slices.ContainsFunc(teams, func(t *identity.Team) bool { return t.ID == q.Team }) {
			return nil, Period{}, engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "/team", "no team %q", q.Team)
		}
		if !admin && !(slices.Contains(roles, identity.RoleManager) && slices.Contains(leads, q.Team)) {
			return nil, Period{}, engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "/team", "you do not lead team %s", q.Team)
		}
		users, err := s.dir.ListUsers(ctx, actor.Org, identity.UserFilter{Team: q.Team, Limit: maxTeamReps + 1})
		if err != nil {
			return nil, Period{}, err
		}
		if len(users) > maxTeamReps {
			return nil, Period{}, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/team", "team %s has more than %d members: ask per rep", q.Team, maxTeamReps)
		}
		for _, u := range users {
			if u.HasRole(identity.RoleRep) {
				reps = append(reps, u.ID)
			}
		}
	}
	return reps, p, nil
}

// caller returns the roles and led teams of actor from the directory; a
// token the directory does not know (the operator's) keeps its roles.
func (s *Service) caller(ctx context.Context, actor engine.Actor) (roles, leads []string, err error) {
	u, err := s.dir.User(ctx, actor.Org, actor.User)
	switch {
	case engine.ErrorKind(err) == engine.KindNotFound:
		return actor.Roles, nil, nil
	case err != nil:
		return nil, nil, err
	case u.Disabled:
		return nil, nil, engine.Errorf(engine.KindForbidden, engine.CodeUserDisabled, "", "this user is disabled; ask an administrator")
	}
	return u.Roles, u.Leads, nil
}

// period parses the calendar days of a request.
func period(from, to string, loc *time.Location) (Period, error) {
	f, err := time.ParseInLocation(dateLayout, from, loc)
	if err != nil {
		return Period{}, invalid("/from", "from must be a date YYYY-MM-DD")
	}
	t, err := time.ParseInLocation(dateLayout, to, loc)
	if err != nil {
		return Period{}, invalid("/to", "to must be a date YYYY-MM-DD")
	}
	if t.Before(f) {
		return Period{}, invalid("/to", "to must not be before from")
	}
	if days := int(t.Sub(f).Hours()/24+0.5) + 1; days > MaxDays {
		return Period{}, invalid("/to", "a report covers at most %d days, asked for %d", MaxDays, days)
	}
	return Period{From: f, To: t, Loc: loc}, nil
}

// read returns rep's documents that p may concern: those under the rep's
// KPI index keys of every UTC month the period touches. Each key's
// documents are kept between requests (scopeDocs) and brought up to date
// with the changes since, so a report costs the changes since the last
// one, not every document of the months, after the first.
func (s *Service) read(ctx context.Context, org, rep string, p Period) ([]Doc, error) {
	merged := map[string]seqDoc{}
	end := p.End()
	for m := monthStart(p.Start()); m.Before(end); m = m.AddDate(0, 1, 0) {
		sd := s.scopeDocs(org, fieldsales.KPIIndexKey(rep, m))
		grew, err := sd.catchUp(ctx, s.feed, org, merged)
		if err != nil {
			return nil, err
		}
		s.account(sd, grew)
	}
	all := make([]seqDoc, 0, len(merged))
	for _, d := range merged {
		all = append(all, d)
	}
	slices.SortFunc(all, func(a, b seqDoc) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Doc, len(all))
	for i, d := range all {
		out[i] = d.doc
	}
	return out, nil
}

// seqDoc is a document as of its latest change's seq.
type seqDoc struct {
	seq int64
	doc Doc
}

// scopeDocs are the live documents under one index key of an organisation,
// as of pos.
type scopeDocs struct {
	key   string
	mu    sync.Mutex
	pos   int64
	docs  map[string]seqDoc // collection/id
	bytes int               // of the bodies in docs; Service.mu
	used  atomic.Int64      // unix nanoseconds of the last read, for eviction
}

// cacheBytes bounds the document bodies a service keeps across all
// rep-months; past it the least recently read rep-months go.
const cacheBytes = 64 << 20

func (s *Service) scopeDocs(org, key string) *scopeDocs {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := org + "\x1f" + key
	sd := s.cache[k]
	if sd == nil {
		sd = &scopeDocs{key: key, docs: map[string]seqDoc{}}
		s.cache[k] = sd
	}
	sd.used.Store(time.Now().UnixNano())
	return sd
}

// account records that sd's bodies grew by grew bytes (negative: shrank)
// and drops the least recently read rep-months while the cache is over
// cacheBytes (sd itself last: it was just read).
func (s *Service) account(sd *scopeDocs, grew int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sd.bytes += grew
	s.bytes += grew
	for s.bytes > s.maxBytes && len(s.cache) > 1 {
		var oldest string
		for k, c := range s.cache {
			if c != sd && (oldest == "" || c.used.Load() < s.cache[oldest].used.Load()) {
				oldest = k
			}
		}
		s.bytes -= s.cache[oldest].bytes
		delete(s.cache, oldest)
	}
}

// catchUp reads the key's changes since pos and adds its live documents to
// into (the latest change of a document wins).
func (sd *scopeDocs) catchUp(ctx context.Context, feed Feed, org string, into map[string]seqDoc) (grew int, err error) {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	for {
		pg, err := feed.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{sd.key}, After: sd.pos, Limit: 1000, MaxBytes: 16 << 20})
		if err != nil {
			return grew, err
		}
		if pg.Compacted {
			// Behind the history the store keeps: read the key again.
			for _, d := range sd.docs {
				grew -= len(d.doc.Body)
			}
			sd.pos, sd.docs = 0, map[string]seqDoc{}
			continue
		}
		for _, ch := range pg.Changes {
			k := ch.Collection + "/" + ch.ID
			grew -= len(sd.docs[k].doc.Body)
			if ch.Deleted || ch.Evicted {
				delete(sd.docs, k)
				continue
			}
			// The body outlives the page: a copy of its own.
			sd.docs[k] = seqDoc{seq: ch.Seq, doc: Doc{Collection: ch.Collection, ID: ch.ID, Body: bytes.Clone(ch.Body)}}
			grew += len(ch.Body)
		}
		done := !pg.More || pg.Through <= sd.pos
		sd.pos = max(sd.pos, pg.Through)
		if done {
			break
		}
	}
	for k, d := range sd.docs {
		if cur, ok := into[k]; !ok || d.seq > cur.seq {
			into[k] = d
		}
	}
	return grew, nil
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}
