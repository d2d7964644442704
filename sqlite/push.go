package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	engine "github.com/fieldsync/fieldsync/sync"
)

// feedEntry is where a document sits in one scope's feed.
type feedEntry struct {
	Seq     int64 `json:"s"`
	Revoked bool  `json:"r,omitempty"`
}

type writeStmts struct {
	getOutcome, putOutcome, getDoc, putDoc, delFeed, putFeed, setSeq *sql.Stmt
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.getOutcome, `SELECT outcome FROM mutations WHERE org = ? AND usr = ? AND device = ? AND mid = ?`},
		{&w.putOutcome, `INSERT INTO mutations(org, usr, device, mid, outcome, at) VALUES (?, ?, ?, ?, ?, ?)`},
		{&w.getDoc, `SELECT owner, version, seq, deleted, body, fields, feed, updated_at, updated_by FROM docs WHERE org = ? AND coll = ? AND id = ?`},
		{&w.putDoc, `INSERT INTO docs(org, coll, id, owner, version, seq, deleted, body, fields, feed, updated_at, updated_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org, coll, id) DO UPDATE SET owner = excluded.owner, version = excluded.version, seq = excluded.seq,
			deleted = excluded.deleted, body = excluded.body, fields = excluded.fields, feed = excluded.feed,
			updated_at = excluded.updated_at, updated_by = excluded.updated_by`},
		{&w.delFeed, `DELETE FROM feed WHERE org = ? AND scope = ? AND seq = ? AND coll = ? AND id = ?`},
		{&w.putFeed, `INSERT INTO feed(org, scope, seq, coll, id, revoked) VALUES (?, ?, ?, ?, ?, ?)`},
		{&w.setSeq, `UPDATE meta SET value = ? WHERE key = 'seq'`},
	} {
		st, err := db.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.dst = st
	}
	return nil
}

func (w *writeStmts) close() {
	for _, st := range []*sql.Stmt{w.getOutcome, w.putOutcome, w.getDoc, w.putDoc, w.delFeed, w.putFeed, w.setSeq} {
		if st != nil {
			st.Close()
		}
	}
}

// pushTx is one push's view of the writer transaction.
type pushTx struct {
	ctx context.Context
	tx  *sql.Tx
	st  writeStmts
	org string
	seq int64
}

// Push implements sync.Store: the whole batch is one transaction, committed
// (and, with synchronous=FULL, fsynced) before Push returns.
func (s *Store) Push(ctx context.Context, b engine.PushBatch, decide engine.Decide) ([]engine.Outcome, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, translate(err)
	}
	defer tx.Rollback() // a no-op after Commit
	p := &pushTx{ctx: ctx, tx: tx, org: b.Actor.Org, seq: s.seq}
	for _, st := range []struct{ dst, src **sql.Stmt }{
		{&p.st.getOutcome, &s.stmts.getOutcome}, {&p.st.putOutcome, &s.stmts.putOutcome},
		{&p.st.getDoc, &s.stmts.getDoc}, {&p.st.putDoc, &s.stmts.putDoc},
		{&p.st.delFeed, &s.stmts.delFeed}, {&p.st.putFeed, &s.stmts.putFeed}, {&p.st.setSeq, &s.stmts.setSeq},
	} {
		*st.dst = tx.StmtContext(ctx, *st.src)
	}
	now := time.Now().UnixMilli()
	outs := make([]engine.Outcome, len(b.Mutations))
	for i := range b.Mutations {
		m := &b.Mutations[i]
		var raw []byte
		err := p.st.getOutcome.QueryRowContext(ctx, b.Actor.Org, b.Actor.User, b.Device, m.ID).Scan(&raw)
		if err == nil {
			if err := json.Unmarshal(raw, &outs[i]); err != nil {
				return nil, fmt.Errorf("sqlite: decode recorded outcome: %w", err)
			}
			continue
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, translate(err)
		}
		cur, feed, err := p.load(m.Collection, m.DocID)
		if err != nil {
			return nil, err
		}
		next, out := decide(i, cur)
		if next != nil {
			if err := p.write(next, feed); err != nil {
				return nil, err
			}
		}
		enc, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		if _, err := p.st.putOutcome.ExecContext(ctx, b.Actor.Org, b.Actor.User, b.Device, m.ID, enc, now); err != nil {
			return nil, translate(err)
		}
		outs[i] = out
	}
	if p.seq != s.seq {
		if _, err := p.st.setSeq.ExecContext(ctx, p.seq); err != nil {
			return nil, translate(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, translate(err)
	}
	s.seq = p.seq
	return outs, nil
}

// load reads the current document and its feed positions; nil when absent.
func (p *pushTx) load(coll, id string) (*engine.Document, map[string]feedEntry, error) {
	d := &engine.Document{Org: p.org, Collection: coll, ID: id}
	var deleted int
	var fields, feedRaw []byte
	var updated int64
	err := p.st.getDoc.QueryRowContext(p.ctx, p.org, coll, id).Scan(&d.Owner, &d.Version, &d.Seq, &deleted,
		&d.Body, &fields, &feedRaw, &updated, &d.UpdatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, translate(err)
	}
	d.Deleted = deleted != 0
	d.UpdatedAt = time.UnixMilli(updated).UTC()
	if err := json.Unmarshal(fields, &d.Fields); err != nil {
		return nil, nil, fmt.Errorf("sqlite: decode fields of %s/%s: %w", coll, id, err)
	}
	var feed map[string]feedEntry
	if err := json.Unmarshal(feedRaw, &feed); err != nil {
		return nil, nil, fmt.Errorf("sqlite: decode feed of %s/%s: %w", coll, id, err)
	}
	for scope, f := range feed {
		if !f.Revoked {
			d.Scopes = append(d.Scopes, scope)
		}
	}
	slices.Sort(d.Scopes)
	return d, feed, nil
}

// write stores next at a new sequence and moves its feed rows: every scope
// it is in gets a row at the new sequence, every scope it just left gets an
// eviction row, and scopes it left earlier keep their eviction where it is.
func (p *pushTx) write(next *engine.Document, old map[string]feedEntry) error {
	p.seq++
	next.Seq = p.seq
	feed := make(map[string]feedEntry, len(next.Scopes)+len(old))
	for scope, f := range old {
		if f.Revoked && !slices.Contains(next.Scopes, scope) {
			feed[scope] = f
			continue
		}
		if _, err := p.st.delFeed.ExecContext(p.ctx, p.org, scope, f.Seq, next.Collection, next.ID); err != nil {
			return translate(err)
		}
		if !slices.Contains(next.Scopes, scope) {
			feed[scope] = feedEntry{Seq: p.seq, Revoked: true}
		}
	}
	for _, scope := range next.Scopes {
		feed[scope] = feedEntry{Seq: p.seq}
	}
	for scope, f := range feed {
		if f.Seq != p.seq {
			continue
		}
		if _, err := p.st.putFeed.ExecContext(p.ctx, p.org, scope, p.seq, next.Collection, next.ID, boolInt(f.Revoked)); err != nil {
			return translate(err)
		}
	}
	fields, err := json.Marshal(next.Fields)
	if err != nil {
		return err
	}
	feedRaw, err := json.Marshal(feed)
	if err != nil {
		return err
	}
	var body any
	if next.Body != nil {
		body = []byte(next.Body)
	}
	_, err = p.st.putDoc.ExecContext(p.ctx, p.org, next.Collection, next.ID, next.Owner, next.Version, next.Seq,
		boolInt(next.Deleted), body, fields, feedRaw, next.UpdatedAt.UnixMilli(), next.UpdatedBy)
	return translate(err)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
