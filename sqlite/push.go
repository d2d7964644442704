package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/sync/feed"
)

type docKey struct{ coll, id string }

// state is a document as the batch sees it: as loaded, and as last decided.
type state struct {
	doc      *engine.Document // nil while the document does not exist
	origFeed map[string]feed.Pos
	feed     map[string]feed.Pos
	dirty    bool
}

// rowChunk bounds the rows of one multi-row statement, far below SQLite's
// 32,766 bound variables.
const rowChunk = 200

// Push implements sync.Store. A batch costs a constant number of statements
// whatever its size: one read of the recorded outcomes, one read of the
// current documents per collection, then multi-row writes of documents, feed
// rows and outcomes.
//
// Pushes are group-committed: the writer goroutine takes every batch that
// queued while the previous commit was running and commits them in one
// transaction, each batch inside its own savepoint. The fsync that makes a
// commit durable (most of a commit's cost with synchronous=FULL) is then
// shared by all the devices pushing at that moment, and a failing batch
// rolls back alone. Push returns only once its batch is committed.
func (s *Store) Push(ctx context.Context, b engine.PushBatch, decide engine.Decide) ([]engine.Outcome, error) {
	r := &pushReq{ctx: ctx, batch: b, decide: decide, done: make(chan pushRes, 1)}
	// closeMu keeps Close from stopping the writer between the check and the
	// send, so every queued push is answered.
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, errClosed
	}
	select {
	case s.queue <- r:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return nil, translate(ctx.Err())
	}
	s.closeMu.RUnlock()
	// Once queued, wait for the answer even if ctx ends: the writer may be
	// committing the batch right now, and the caller must not be told it
	// failed when it did not.
	res := <-r.done
	return res.outs, res.err
}

var errClosed = &engine.Error{Kind: engine.KindUnavailable, Code: engine.CodeUnavailable, Message: "the store is closed"}

type pushReq struct {
	ctx    context.Context
	batch  engine.PushBatch
	decide engine.Decide
	done   chan pushRes
}

type pushRes struct {
	outs []engine.Outcome
	err  error
}

// maxGroup bounds the batches of one group commit, so one commit's
// transaction stays small enough to keep latency predictable.
const maxGroup = 32

// writer owns every push transaction until Close.
func (s *Store) writer() {
	defer close(s.writerDone)
	for {
		var group []*pushReq
		select {
		case r := <-s.queue:
			group = append(group, r)
		case <-s.quit:
			s.failQueued()
			return
		}
	drain:
		for len(group) < maxGroup {
			select {
			case r := <-s.queue:
				group = append(group, r)
			default:
				break drain
			}
		}
		s.groups.Add(1)
		s.grouped.Add(int64(len(group)))
		s.commitGroup(group)
	}
}

// failQueued answers the pushes still queued at Close.
func (s *Store) failQueued() {
	for {
		select {
		case r := <-s.queue:
			r.done <- pushRes{err: errClosed}
		default:
			return
		}
	}
}

// commitGroup runs every batch of the group in one transaction, each in a
// savepoint, then commits once and answers them all.
func (s *Store) commitGroup(group []*pushReq) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	fail := func(err error) {
		for _, r := range group {
			r.done <- pushRes{err: err}
		}
	}
	// The transaction outlives any one caller's context: a batch whose
	// caller gave up still runs, so that "not committed" is never guessed.
	ctx := context.Background()
	tx := s.wtx
	if _, err := tx.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		fail(translate(err))
		return
	}
	committed := false
	defer func() {
		if !committed {
			// Also after a failed COMMIT, which can leave the transaction open.
			tx.conn.ExecContext(ctx, "ROLLBACK")
		}
	}()
	seq := s.seq
	results := make([]pushRes, len(group))
	for i, r := range group {
		if _, err := tx.exec(ctx, "SAVEPOINT batch"); err != nil {
			fail(translate(err))
			return
		}
		before := seq
		outs, err := pushBatch(r.ctx, tx, r.batch, r.decide, &seq, s.now().UnixMilli())
		if err != nil {
			seq = before
			if _, rerr := tx.exec(ctx, "ROLLBACK TO batch"); rerr != nil {
				fail(translate(rerr))
				return
			}
			results[i] = pushRes{err: err}
		} else {
			results[i] = pushRes{outs: outs}
		}
		if _, err := tx.exec(ctx, "RELEASE batch"); err != nil {
			fail(translate(err))
			return
		}
	}
	if seq != s.seq {
		if _, err := tx.exec(ctx, `UPDATE meta SET value = ? WHERE key = 'seq'`, seq); err != nil {
			fail(translate(err))
			return
		}
	}
	if _, err := tx.conn.ExecContext(ctx, "COMMIT"); err != nil {
		fail(translate(err))
		return
	}
	committed = true
	s.seq = seq
	s.committed.Store(seq)
	for i, r := range group {
		r.done <- results[i]
	}
	s.notifyCommit(group, results) // stream.go
}

// pushBatch applies one batch inside the group's transaction, taking
// sequence numbers from *seq.
func pushBatch(ctx context.Context, tx *writerConn, b engine.PushBatch, decide engine.Decide, seq *int64, now int64) ([]engine.Outcome, error) {
	org := b.Actor.Org
	recorded, err := loadOutcomes(ctx, tx, b)
	if err != nil {
		return nil, err
	}
	byColl := map[string][]string{}
	for _, m := range b.Mutations {
		if _, done := recorded[m.ID]; !done {
			byColl[m.Collection] = append(byColl[m.Collection], m.DocID)
		}
	}
	for _, p := range b.Parents { // in the same reads, as they are in this transaction
		byColl[p.Collection] = append(byColl[p.Collection], p.ID)
	}
	docs, err := loadDocs(ctx, tx, org, byColl)
	if err != nil {
		return nil, err
	}
	if b.Snapshot != nil {
		parents := make(map[engine.DocRef]*engine.Document, len(b.Parents))
		for _, p := range b.Parents {
			if d := docs.of(p.Collection, p.ID).current(); d != nil {
				parents[p] = d
			}
		}
		b.Snapshot(parents, true) // one writer: nothing changes them before the commit
	}

	outs := make([]engine.Outcome, len(b.Mutations))
	var newOutcomes []int
	var written []*engine.Document
	for i := range b.Mutations {
		m := &b.Mutations[i]
		if o, ok := recorded[m.ID]; ok {
			outs[i] = o
			continue
		}
		st := docs.of(m.Collection, m.DocID)
		next, out := decide(i, st.current())
		if next != nil {
			st.write(next, seq)
			written = append(written, next)
		}
		outs[i] = out
		// An applied create is recorded by its document's origin.
		if m.Op != engine.OpCreate || out.Status != engine.StatusApplied {
			newOutcomes = append(newOutcomes, i)
		}
	}
	if err := thenRounds(ctx, tx, b, decide, docs, written, seq); err != nil {
		return nil, err
	}

	if err := writeDocs(ctx, tx, org, docs); err != nil {
		return nil, err
	}
	if err := writeOutcomes(ctx, tx, b, outs, newOutcomes, now); err != nil {
		return nil, err
	}
	return outs, nil
}

// thenRounds decides and stages the server's writes that follow from the
// batch (PushBatch.Then), in the batch's transaction.
func thenRounds(ctx context.Context, tx *writerConn, b engine.PushBatch, decide engine.Decide, docs docStates, written []*engine.Document, seq *int64) error {
	if b.Then == nil {
		return nil
	}
	next := len(b.Mutations)
	for round := 0; ; round++ {
		more, err := b.Then(written)
		if err != nil {
			return err
		}
		if len(more) == 0 {
			return nil
		}
		if round == engine.MaxThenRounds {
			return fmt.Errorf("sqlite: the batch's effects did not settle in %d rounds", engine.MaxThenRounds)
		}
		byColl := map[string][]string{}
		for _, m := range more {
			if _, ok := docs[docKey{m.Collection, m.DocID}]; !ok {
				byColl[m.Collection] = append(byColl[m.Collection], m.DocID)
			}
		}
		loaded, err := loadDocs(ctx, tx, b.Actor.Org, byColl)
		if err != nil {
			return err
		}
		for k, st := range loaded {
			docs[k] = st
		}
		written = written[:0:0]
		for _, m := range more {
			st := docs.of(m.Collection, m.DocID)
			if d, _ := decide(next, st.current()); d != nil {
				st.write(d, seq)
				written = append(written, d)
			}
			next++
		}
	}
}

// docStates are the documents a batch touches, by key.
type docStates map[docKey]*state

// of returns the state of a document, empty when it does not exist.
func (d docStates) of(coll, id string) *state {
	k := docKey{coll, id}
	st := d[k]
	if st == nil {
		st = &state{}
		d[k] = st
	}
	return st
}

// current is a copy of the document as the batch left it (nil: none).
func (st *state) current() *engine.Document {
	if st.doc == nil {
		return nil
	}
	c := *st.doc
	return &c
}

// write stages next as the document's state at a new seq.
func (st *state) write(next *engine.Document, seq *int64) {
	*seq++
	next.Seq = *seq
	st.feed = feed.Move(st.feed, next.Scopes, *seq)
	st.doc, st.dirty = next, true
}

func placeholders(n, cols int) string {
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(tuple+",", n), ",")
}

func loadOutcomes(ctx context.Context, tx *writerConn, b engine.PushBatch) (map[string]engine.Outcome, error) {
	recorded := make(map[string]engine.Outcome, len(b.Mutations))
	for start := 0; start < len(b.Mutations); start += rowChunk {
		chunk := b.Mutations[start:min(start+rowChunk, len(b.Mutations))]
		args := []any{b.Actor.Org, b.Actor.User, b.Device}
		for _, m := range chunk {
			args = append(args, m.ID)
		}
		q := `SELECT mid, outcome FROM mutations WHERE org = ? AND usr = ? AND device = ? AND mid IN (` +
			strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",") + `)`
		rows, err := tx.query(ctx, q, args...)
		if err != nil {
			return nil, translate(err)
		}
		for rows.Next() {
			var mid string
			var raw []byte
			if err := rows.Scan(&mid, &raw); err != nil {
				rows.Close()
				return nil, translate(err)
			}
			var o engine.Outcome
			if err := json.Unmarshal(raw, &o); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: decode recorded outcome: %w", err)
			}
			recorded[mid] = o
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, translate(err)
		}
	}
	return recorded, nil
}

func loadDocs(ctx context.Context, tx *writerConn, org string, byColl map[string][]string) (docStates, error) {
	docs := docStates{}
	for coll, ids := range byColl {
		slices.Sort(ids)
		ids = slices.Compact(ids)
		for start := 0; start < len(ids); start += rowChunk {
			chunk := ids[start:min(start+rowChunk, len(ids))]
			args := []any{org, coll}
			for _, id := range chunk {
				args = append(args, id)
			}
			q := `SELECT id, owner, version, seq, deleted, body, fields, feed, updated_at, updated_by, origin_device, origin_mid FROM docs
				WHERE org = ? AND coll = ? AND id IN (` + strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",") + `)`
			rows, err := tx.query(ctx, q, args...)
			if err != nil {
				return nil, translate(err)
			}
			for rows.Next() {
				st, err := scanDoc(rows, org, coll)
				if err != nil {
					rows.Close()
					return nil, err
				}
				docs[docKey{coll, st.doc.ID}] = st
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, translate(err)
			}
		}
	}
	return docs, nil
}

func scanDoc(rows *sql.Rows, org, coll string) (*state, error) {
	d := &engine.Document{Org: org, Collection: coll}
	var deleted int
	var fields, feedRaw []byte
	var updated int64
	var body []byte // a tombstone's body is NULL, which json.RawMessage cannot scan
	st := &state{doc: d}
	if err := rows.Scan(&d.ID, &d.Owner, &d.Version, &d.Seq, &deleted, &body, &fields, &feedRaw, &updated, &d.UpdatedBy,
		&d.OriginDevice, &d.OriginMutation); err != nil {
		return nil, translate(err)
	}
	d.Body = body
	d.Deleted = deleted != 0
	d.UpdatedAt = time.UnixMilli(updated).UTC()
	if err := decodeFields(fields, &d.Fields); err != nil { // meta.go
		return nil, fmt.Errorf("sqlite: decode fields of %s/%s: %w", coll, d.ID, err)
	}
	var positions map[string]feed.Pos
	if err := decodeFeed(feedRaw, &positions); err != nil {
		return nil, fmt.Errorf("sqlite: decode feed of %s/%s: %w", coll, d.ID, err)
	}
	for scope, f := range positions {
		if !f.Revoked {
			d.Scopes = append(d.Scopes, scope)
		}
	}
	slices.Sort(d.Scopes)
	st.origFeed, st.feed = positions, positions
	return st, nil
}

// writeDocs writes the final state of every document the batch changed, and
// moves their feed rows from where they were loaded to where they ended up.
// Intermediate states of a document changed twice in one batch never reach
// the feed: the feed holds only a document's latest change.
func writeDocs(ctx context.Context, tx *writerConn, org string, docs docStates) error {
	var docArgs, feedArgs []any
	nDocs, nFeed := 0, 0
	for k, st := range docs {
		if !st.dirty {
			continue
		}
		for scope, f := range st.origFeed {
			if nf, ok := st.feed[scope]; ok && nf == f {
				continue
			}
			// One primary-key delete per moved row: SQLite plans a multi-row
			// delete by row values as a scan of the scope, which is worse.
			if _, err := tx.exec(ctx, `DELETE FROM feed WHERE org = ? AND scope = ? AND seq = ? AND coll = ? AND id = ?`,
				org, scope, f.Seq, k.coll, k.id); err != nil {
				return translate(err)
			}
		}
		for scope, f := range st.feed {
			if of, ok := st.origFeed[scope]; ok && of == f {
				continue
			}
			feedArgs = append(feedArgs, org, scope, f.Seq, k.coll, k.id, boolInt(f.Revoked))
			nFeed++
		}
		d := st.doc
		fields, err := encodeFields(d.Fields) // meta.go
		if err != nil {
			return err
		}
		feedRaw, err := encodeFeed(st.feed)
		if err != nil {
			return err
		}
		var body any
		if d.Body != nil {
			body = []byte(d.Body)
		}
		docArgs = append(docArgs, org, k.coll, k.id, d.Owner, d.Version, d.Seq, boolInt(d.Deleted), body, fields, feedRaw,
			d.UpdatedAt.UnixMilli(), d.UpdatedBy, d.OriginDevice, d.OriginMutation)
		nDocs++
	}
	if err := insertRows(ctx, tx, `INSERT INTO feed(org, scope, seq, coll, id, revoked) VALUES `, "", 6, nFeed, feedArgs); err != nil {
		return err
	}
	// origin_* is written by the insert only: an update never changes who created the document.
	return insertRows(ctx, tx, `INSERT INTO docs(org, coll, id, owner, version, seq, deleted, body, fields, feed, updated_at, updated_by, origin_device, origin_mid) VALUES `,
		` ON CONFLICT (org, coll, id) DO UPDATE SET owner = excluded.owner, version = excluded.version, seq = excluded.seq,
		deleted = excluded.deleted, body = excluded.body, fields = excluded.fields, feed = excluded.feed,
		updated_at = excluded.updated_at, updated_by = excluded.updated_by`, 14, nDocs, docArgs)
}

func writeOutcomes(ctx context.Context, tx *writerConn, b engine.PushBatch, outs []engine.Outcome, idx []int, now int64) error {
	args := make([]any, 0, len(idx)*6)
	for _, i := range idx {
		enc, err := json.Marshal(outs[i])
		if err != nil {
			return err
		}
		args = append(args, b.Actor.Org, b.Actor.User, b.Device, b.Mutations[i].ID, enc, now)
	}
	// OR IGNORE: a batch is answered once per mutation id (the engine's rule); a
	// store never fails a batch over its own bookkeeping.
	return insertRows(ctx, tx, `INSERT OR IGNORE INTO mutations(org, usr, device, mid, outcome, at) VALUES `, "", 6, len(idx), args)
}

// insertRows runs a multi-row INSERT in chunks of rowChunk rows.
func insertRows(ctx context.Context, tx *writerConn, head, tail string, cols, n int, args []any) error {
	for start := 0; start < n; start += rowChunk {
		rows := min(rowChunk, n-start)
		q := head + placeholders(rows, cols) + tail
		if _, err := tx.exec(ctx, q, args[start*cols:(start+rows)*cols]...); err != nil {
			return translate(err)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// GroupStats reports how many group commits ran and how many push batches
// they carried: batches/groups is the average fsync sharing.
func (s *Store) GroupStats() (groups, batches int64) { return s.groups.Load(), s.grouped.Load() }

// writerConn is the single writer connection, held for the store's life.
// Transactions are opened on it with BEGIN IMMEDIATE by hand, so statements
// prepared on it once can run inside any of them: a batch's statements differ
// only in their number of rows, so a handful of shapes cover every push and
// SQLite stops re-parsing them. Only the writer goroutine and Secret use it,
// both under Store.wmu.
type writerConn struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// maxCachedStmts bounds the cache; other shapes are prepared per use.
const maxCachedStmts = 256

func (w *writerConn) stmt(ctx context.Context, q string) (st *sql.Stmt, cached bool, err error) {
	if st, ok := w.stmts[q]; ok {
		return st, true, nil
	}
	st, err = w.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, false, translate(err)
	}
	if len(w.stmts) < maxCachedStmts {
		w.stmts[q] = st
		return st, true, nil
	}
	return st, false, nil
}

func (w *writerConn) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, cached, err := w.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if !cached {
		// Closing a statement with open rows is deferred by database/sql
		// until the rows are closed.
		defer st.Close()
	}
	return st.QueryContext(ctx, args...)
}

func (w *writerConn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, cached, err := w.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if !cached {
		defer st.Close()
	}
	return st.ExecContext(ctx, args...)
}

func (w *writerConn) close() error {
	for _, st := range w.stmts {
		st.Close()
	}
	w.stmts = nil
	return w.conn.Close()
}
