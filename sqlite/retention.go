package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/sync/feed"
)

// migrationRetention (6) records the compaction of history (retention.go in
// the engine explains the protocol). One sequence serves every organisation
// here, so one floor does too.
const migrationRetention = `
CREATE TABLE history (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	floor     INTEGER NOT NULL, -- announced: a checkpoint below it starts over
	floor_at  INTEGER NOT NULL, -- when it was announced, unix milliseconds
	compacted INTEGER NOT NULL, -- tombstones and evictions are deleted up to here
	marks     BLOB NOT NULL     -- JSON [[seq, unix ms], ...]: the committed sequence at past runs
);
INSERT INTO history(id, floor, floor_at, compacted, marks) VALUES (1, 0, 0, 0, '[]');
CREATE INDEX mutations_by_at ON mutations(at);
CREATE INDEX docs_tombstones ON docs(seq) WHERE deleted = 1;
CREATE INDEX feed_evictions ON feed(seq) WHERE revoked = 1;
`

// compactChunk bounds the rows one write transaction deletes, so pushes
// wait for the writer at most that long.
const compactChunk = 2000

type mark struct{ Seq, At int64 }

func (m mark) MarshalJSON() ([]byte, error) { return json.Marshal([2]int64{m.Seq, m.At}) }
func (m *mark) UnmarshalJSON(b []byte) error {
	var v [2]int64
	err := json.Unmarshal(b, &v)
	m.Seq, m.At = v[0], v[1]
	return err
}

type history struct {
	floor, floorAt, compacted int64
	marks                     []mark
}

func (s *Store) loadHistory(ctx context.Context) (history, error) {
	var h history
	var raw []byte
	if err := s.r.QueryRowContext(ctx, `SELECT floor, floor_at, compacted, marks FROM history WHERE id = 1`).
		Scan(&h.floor, &h.floorAt, &h.compacted, &raw); err != nil {
		return h, translate(err)
	}
	if err := json.Unmarshal(raw, &h.marks); err != nil {
		return h, fmt.Errorf("sqlite: decode history marks: %w", err)
	}
	return h, nil
}

// Compact runs one compaction (engine.Retention): it deletes below the
// floor it announced at least r.Wait ago, deletes recorded outcomes older
// than r.History, and announces the next floor. Running it again at once
// changes nothing.
func (s *Store) Compact(ctx context.Context, now time.Time, r engine.Retention) (engine.Compaction, error) {
	var c engine.Compaction
	h, err := s.loadHistory(ctx)
	if err != nil {
		return c, err
	}
	cutoff := now.Add(-r.History).UnixMilli()
	if h.floor > h.compacted && now.UnixMilli()-h.floorAt >= r.Wait.Milliseconds() {
		if err := s.compactBelow(ctx, h.floor, &c); err != nil {
			return c, err
		}
		h.compacted = h.floor
	}
	for {
		var n int64
		err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
			res, err := tx.exec(ctx, `DELETE FROM mutations WHERE (org, usr, device, mid) IN
				(SELECT org, usr, device, mid FROM mutations WHERE at < ? LIMIT ?)`,
				cutoff, compactChunk)
			if err != nil {
				return translate(err)
			}
			n, err = res.RowsAffected()
			return translate(err)
		})
		c.Outcomes += n
		if err != nil {
			return c, err
		}
		if n < compactChunk {
			break
		}
	}
	// The next floor: the sequence at the newest past run before the
	// cutoff, when it is past the current one.
	var keep []mark
	for i, m := range h.marks {
		if m.At <= cutoff {
			if m.Seq > h.floor {
				h.floor, h.floorAt = m.Seq, now.UnixMilli()
			}
			if i+1 < len(h.marks) && h.marks[i+1].At <= cutoff {
				continue // an older one than the newest before the cutoff: no longer needed
			}
		}
		keep = append(keep, m)
	}
	h.marks = append(keep, mark{Seq: s.committed.Load(), At: now.UnixMilli()})
	raw, err := json.Marshal(h.marks)
	if err != nil {
		return c, err
	}
	// Announced before anything below it is deleted (a later run).
	if err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		_, err := tx.exec(ctx, `UPDATE history SET floor = ?, floor_at = ?, compacted = ?, marks = ? WHERE id = 1`,
			h.floor, h.floorAt, h.compacted, raw)
		return translate(err)
	}); err != nil {
		return c, err
	}
	s.floor.Store(h.floor)
	c.Floor, c.Orgs = h.floor, 1
	return c, nil
}

// compactBelow deletes the tombstones at or below floor with their feed
// rows, and the evictions at or below it.
func (s *Store) compactBelow(ctx context.Context, floor int64, c *engine.Compaction) error {
	for {
		var n int
		err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
			rows, err := tx.query(ctx, `SELECT org, coll, id, feed FROM docs WHERE deleted = 1 AND seq <= ? LIMIT ?`, floor, compactChunk)
			if err != nil {
				return translate(err)
			}
			type tomb struct {
				org, coll, id string
				feed          map[string]feed.Pos
			}
			var tombs []tomb
			for rows.Next() {
				var t tomb
				var raw []byte
				if err := rows.Scan(&t.org, &t.coll, &t.id, &raw); err != nil {
					rows.Close()
					return translate(err)
				}
				if err := json.Unmarshal(raw, &t.feed); err != nil {
					rows.Close()
					return fmt.Errorf("sqlite: decode feed of %s/%s: %w", t.coll, t.id, err)
				}
				tombs = append(tombs, t)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return translate(err)
			}
			for _, t := range tombs {
				for scope, f := range t.feed {
					res, err := tx.exec(ctx, `DELETE FROM feed WHERE org = ? AND scope = ? AND seq = ? AND coll = ? AND id = ?`,
						t.org, scope, f.Seq, t.coll, t.id)
					if err != nil {
						return translate(err)
					}
					k, _ := res.RowsAffected()
					c.Feed += k
				}
				if _, err := tx.exec(ctx, `DELETE FROM docs WHERE org = ? AND coll = ? AND id = ?`, t.org, t.coll, t.id); err != nil {
					return translate(err)
				}
			}
			n = len(tombs)
			return nil
		})
		c.Docs += int64(n)
		if err != nil {
			return err
		}
		if n < compactChunk {
			break
		}
	}
	for {
		var n int64
		err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
			res, err := tx.exec(ctx, `DELETE FROM feed WHERE (org, scope, seq, coll, id) IN
				(SELECT org, scope, seq, coll, id FROM feed WHERE revoked = 1 AND seq <= ? LIMIT ?)`,
				floor, compactChunk)
			if err != nil {
				return translate(err)
			}
			n, err = res.RowsAffected()
			return translate(err)
		})
		c.Feed += n
		if err != nil {
			return err
		}
		if n < compactChunk {
			return nil
		}
	}
}
