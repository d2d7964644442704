package sqlite

import (
	"context"
	"database/sql"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/sync/feed"
)

const pullSQL = `SELECT f.seq, f.coll, f.id, f.revoked, d.version, d.deleted, d.body
FROM feed f JOIN docs d ON d.org = f.org AND d.coll = f.coll AND d.id = f.id
WHERE f.org = ? AND f.scope = ? AND f.seq > ?
ORDER BY f.seq LIMIT ?`

// Pull implements sync.Store. Each scope is one ordered range scan of the
// feed's primary key; several scopes are merged by seq here, so the cost
// stays proportional to the page, never to the organisation.
//
// Because every write commits in seq order through the single writer, a
// reader's snapshot always holds a gap-free prefix of the sequence: no change
// with a lower seq can commit after this read.
func (s *Store) Pull(ctx context.Context, q engine.PullQuery) (engine.PullPage, error) {
	if q.Limit <= 0 {
		return engine.PullPage{Through: q.After}, nil
	}
	if q.After > 0 && q.After < s.floor.Load() {
		return engine.PullPage{Compacted: true}, nil
	}
	// Committed before the read, so the read's snapshot holds it: a page
	// that is not cut reaches at least this far.
	committed := s.committed.Load()
	stmt := s.pullStmt // prepared once on the reader pool
	if len(q.Scopes) > 1 {
		// Several scopes are read in one transaction, so from one snapshot.
		// Read one after the other, a scope read later could hold a change
		// that committed after an earlier scope was read, and delivering it
		// would move the checkpoint past the earlier scope's change that
		// committed just before it.
		tx, err := s.r.BeginTx(ctx, nil)
		if err != nil {
			return engine.PullPage{}, translate(err)
		}
		defer tx.Rollback()
		stmt = tx.StmtContext(ctx, s.pullStmt)
	}
	var lists [][]engine.Change
	horizon := int64(-1) // no change past it may be delivered: a cut list may hide rows beyond it
	// A reader of many keys (a manager reads one per rep) reads a share of
	// the page from each instead of a whole page from each: the horizon
	// keeps the merge exact, so a page may come out smaller, never wrong,
	// and a page costs about limit rows instead of limit rows per key.
	per := q
	if n := len(q.Scopes); n > 2 {
		per.Limit = min(q.Limit, max(2*q.Limit/n, 16))
	}
	for _, scope := range q.Scopes {
		l, cut, err := pullScope(ctx, stmt, per, scope)
		if err != nil {
			return engine.PullPage{}, err
		}
		if cut && (horizon < 0 || l[len(l)-1].Seq < horizon) {
			horizon = l[len(l)-1].Seq
		}
		lists = append(lists, l)
	}
	page, more := feed.MergePage(lists, q.Limit, q.MaxBytes, horizon)
	through := q.After
	if len(page) > 0 {
		through = page[len(page)-1].Seq
	}
	if !more {
		through = max(through, committed)
	}
	return engine.PullPage{Changes: page, More: more, Through: through}, nil
}

// pullScope reads one scope's feed after q.After: up to q.Limit+1 changes,
// or fewer when the byte budget is crossed, plus one change past it. cut
// says whether the scope has rows beyond the last one returned.
func pullScope(ctx context.Context, stmt *sql.Stmt, q engine.PullQuery, scope string) (out []engine.Change, cut bool, err error) {
	// One row more than the page tells whether more remain.
	rows, err := stmt.QueryContext(ctx, q.Org, scope, q.After, q.Limit+1)
	if err != nil {
		return nil, false, translate(err)
	}
	defer rows.Close()
	out = make([]engine.Change, 0, min(q.Limit+1, 1024))
	// Bodies are copied into a few large arenas instead of one allocation
	// per row; a page's bodies live and die together.
	var arena []byte
	bytes := 0
	for rows.Next() {
		var c engine.Change
		var revoked, deleted int
		var body sql.RawBytes // valid until the next Next; a tombstone's is nil
		if err := rows.Scan(&c.Seq, &c.Collection, &c.ID, &revoked, &c.Version, &deleted, &body); err != nil {
			return nil, false, translate(err)
		}
		c.Evicted, c.Deleted = revoked != 0, deleted != 0
		if !c.Evicted && !c.Deleted {
			if len(arena)+len(body) > cap(arena) {
				arena = make([]byte, 0, max(len(body), 64<<10))
			}
			start := len(arena)
			arena = append(arena, body...)
			c.Body = arena[start:len(arena):len(arena)]
		}
		out = append(out, c)
		bytes += len(c.Body)
		if q.MaxBytes > 0 && bytes > q.MaxBytes {
			// Past the byte budget: stop reading; whether rows remain is
			// all the caller needs to know.
			return out, rows.Next(), translate(rows.Err())
		}
	}
	return out, len(out) > q.Limit, translate(rows.Err())
}
