package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// What the live stream (package stream) reads and writes: the change
// summary of an organisation's feed, presence records, and a wake-up call
// after each local commit.

// streamSchema is migration 4 (migrationStream).
const streamSchema = `
-- The feed by commit position: "which scopes changed after seq N" is one
-- range scan (the primary key is by scope first).
CREATE INDEX feed_by_seq ON feed(org, seq, scope);

-- Devices holding a live stream, per server instance, until expires (unix
-- milliseconds) unless renewed by the instance's heartbeat.
CREATE TABLE presence (
	org      TEXT NOT NULL,
	usr      TEXT NOT NULL,
	device   TEXT NOT NULL,
	instance TEXT NOT NULL,
	expires  INTEGER NOT NULL,
	PRIMARY KEY (org, usr, device, instance)
) WITHOUT ROWID;
CREATE INDEX presence_by_instance ON presence(instance);
`

// OnCommit registers fn to be called after every group commit, once per
// organisation that the commit changed. fn runs on the writer goroutine and
// must not block (the stream hub only signals a channel). One function may
// be registered; a later call replaces it.
func (s *Store) OnCommit(fn func(org string)) { s.onCommit.Store(&fn) }

// notifyCommit calls the OnCommit function for the orgs of the group's
// batches that committed.
func (s *Store) notifyCommit(group []*pushReq, results []pushRes) {
	p := s.onCommit.Load()
	if p == nil || *p == nil {
		return
	}
	seen := make(map[string]bool, 1)
	for i, r := range group {
		if results[i].err != nil || seen[r.batch.Actor.Org] {
			continue
		}
		seen[r.batch.Actor.Org] = true
		(*p)(r.batch.Actor.Org)
	}
}

// Changed returns the committed head and the scope keys of feed rows after
// after. The head comes from the same read snapshot as the keys, and the
// single writer commits in seq order, so nothing can still commit at or
// below it. The sequence is shared by all organisations, so the head may
// move with no key of org.
func (s *Store) Changed(ctx context.Context, org string, after int64, maxKeys int) (engine.ChangeSet, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return engine.ChangeSet{}, translate(err)
	}
	defer tx.Rollback()
	var head int64
	if err := tx.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'seq'`).Scan(&head); err != nil {
		return engine.ChangeSet{}, translate(err)
	}
	cs := engine.ChangeSet{Head: max(head, after)}
	if head <= after {
		return cs, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT scope FROM feed WHERE org = ? AND seq > ? AND seq <= ? ORDER BY scope LIMIT ?`,
		org, after, head, maxKeys+1)
	if err != nil {
		return engine.ChangeSet{}, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return engine.ChangeSet{}, translate(err)
		}
		cs.Keys = append(cs.Keys, k)
	}
	if err := rows.Err(); err != nil {
		return engine.ChangeSet{}, translate(err)
	}
	if len(cs.Keys) > maxKeys {
		cs.Keys, cs.All = nil, true
	}
	return cs, nil
}

// Head returns the committed head of the feed (shared by all
// organisations).
func (s *Store) Head(ctx context.Context, org string) (int64, error) {
	var head int64
	err := s.r.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'seq'`).Scan(&head)
	return head, translate(err)
}

// Touch records (or renews) presence records, all in one transaction.
func (s *Store) Touch(ctx context.Context, ps []engine.Presence) error {
	if len(ps) == 0 {
		return nil
	}
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		for _, p := range ps {
			if _, err := tx.exec(ctx, `INSERT INTO presence(org, usr, device, instance, expires) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (org, usr, device, instance) DO UPDATE SET expires = excluded.expires`,
				p.Org, p.User, p.Device, p.Instance, ms(p.Expires)); err != nil {
				return translate(err)
			}
		}
		return nil
	})
}

// Renew moves the expiry of every presence record of the instance to
// expires, in one statement, and returns how many there are.
func (s *Store) Renew(ctx context.Context, instance string, expires time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		res, err := tx.exec(ctx, `UPDATE presence SET expires = ? WHERE instance = ?`, ms(expires), instance)
		if err != nil {
			return translate(err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// Leave removes presence records (Expires is ignored), and every record
// that expired before now, in one transaction.
func (s *Store) Leave(ctx context.Context, ps []engine.Presence, now time.Time) error {
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		for _, p := range ps {
			if _, err := tx.exec(ctx, `DELETE FROM presence WHERE org = ? AND usr = ? AND device = ? AND instance = ?`,
				p.Org, p.User, p.Device, p.Instance); err != nil {
				return translate(err)
			}
		}
		_, err := tx.exec(ctx, `DELETE FROM presence WHERE expires < ?`, ms(now))
		return translate(err)
	})
}

// Online returns the devices of the user that hold a live stream on any
// instance, as of now: a record counts until it expires.
func (s *Store) Online(ctx context.Context, org, user string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT device FROM presence WHERE org = ? AND usr = ? AND expires > ? ORDER BY device`,
		org, user, ms(time.Now()))
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, translate(err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, translate(err)
	}
	return out, nil
}
