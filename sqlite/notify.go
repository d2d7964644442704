package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/webhook"
)

var _ push.Store = (*Store)(nil)

// migrationPush creates the push notification tables: devices,
// preferences, quiet hours, the tailer's cursor and lease per organisation,
// and the outbox. Times are unix milliseconds.
const migrationPush = `
CREATE TABLE push_devices (
	org         TEXT NOT NULL,
	usr         TEXT NOT NULL,
	id          TEXT NOT NULL,
	token       TEXT NOT NULL UNIQUE, -- one installation has one owner
	platform    TEXT NOT NULL,
	app_version TEXT NOT NULL,
	updated     INTEGER NOT NULL,
	PRIMARY KEY (org, usr, id)
) WITHOUT ROWID;

CREATE TABLE push_prefs (
	org   TEXT NOT NULL,
	usr   TEXT NOT NULL,
	muted BLOB NOT NULL, -- JSON array of categories
	PRIMARY KEY (org, usr)
) WITHOUT ROWID;

CREATE TABLE push_quiet (
	org       TEXT PRIMARY KEY,
	start_min INTEGER NOT NULL,
	end_min   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE push_tail (
	org         TEXT PRIMARY KEY,
	cursor      INTEGER NOT NULL,
	owner       TEXT NOT NULL,
	lease_until INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE push_outbox (
	id          TEXT PRIMARY KEY,
	org         TEXT NOT NULL,
	usr         TEXT NOT NULL,
	trig        TEXT NOT NULL,
	category    TEXT NOT NULL,
	coll        TEXT NOT NULL,
	doc_id      TEXT NOT NULL,
	seq         INTEGER NOT NULL,
	urgent      INTEGER NOT NULL,
	title       TEXT NOT NULL,
	body        TEXT NOT NULL,
	created     INTEGER NOT NULL,
	due         INTEGER NOT NULL,
	status      TEXT NOT NULL,
	attempts    INTEGER NOT NULL,
	last_error  TEXT NOT NULL,
	delivered   BLOB NOT NULL, -- JSON array of device ids
	lease_owner TEXT NOT NULL,
	lease_until INTEGER NOT NULL,
	sent_at     INTEGER NOT NULL
) WITHOUT ROWID;
-- The dispatcher's scan: pending rows in due order.
CREATE INDEX push_outbox_due ON push_outbox(status, due);
`

// migrationDeviceRegistrations gives a device record its registration
// (webhook.Registration): reg_pending is when the record was created, in
// milliseconds, until the webhook tailer takes it (then 0). Devices
// registered before the migration have none.
const migrationDeviceRegistrations = `
ALTER TABLE push_devices ADD COLUMN reg_pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX push_devices_registrations ON push_devices(org, reg_pending) WHERE reg_pending > 0;
`

// PutDevice implements push.Store. A device record created here carries its
// registration (webhook.Registration) in the same write; a refresh keeps
// the record's.
func (s *Store) PutDevice(ctx context.Context, d push.Device) error {
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		if _, err := tx.exec(ctx, `DELETE FROM push_devices WHERE token = ? AND NOT (org = ? AND usr = ? AND id = ?)`,
			d.Token, d.Org, d.User, d.ID); err != nil {
			return translate(err)
		}
		_, err := tx.exec(ctx, `INSERT INTO push_devices(org, usr, id, token, platform, app_version, updated, reg_pending) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (org, usr, id) DO UPDATE SET token = excluded.token, platform = excluded.platform,
			app_version = excluded.app_version, updated = excluded.updated`,
			d.Org, d.User, d.ID, d.Token, d.Platform, d.AppVersion, ms(d.Updated), max(ms(d.Updated), 1))
		return translate(err)
	})
}

// PendingRegistrations implements webhook.Store.
func (s *Store) PendingRegistrations(ctx context.Context, org string, limit int) ([]webhook.Registration, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT usr, id, platform, reg_pending FROM push_devices
		WHERE org = ? AND reg_pending > 0 ORDER BY reg_pending, usr, id LIMIT ?`, org, limit)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []webhook.Registration
	for rows.Next() {
		r := webhook.Registration{Org: org}
		var at int64
		if err := rows.Scan(&r.User, &r.Device, &r.Platform, &at); err != nil {
			return nil, translate(err)
		}
		r.At = fromMS(at)
		out = append(out, r)
	}
	return out, translate(rows.Err())
}

// TakeRegistrations implements webhook.Store.
func (s *Store) TakeRegistrations(ctx context.Context, rs []webhook.Registration) error {
	if len(rs) == 0 {
		return nil
	}
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		for _, r := range rs {
			if _, err := tx.exec(ctx, `UPDATE push_devices SET reg_pending = 0 WHERE org = ? AND usr = ? AND id = ? AND reg_pending = ?`,
				r.Org, r.User, r.Device, max(ms(r.At), 1)); err != nil {
				return translate(err)
			}
		}
		return nil
	})
}

// Devices implements push.Store.
func (s *Store) Devices(ctx context.Context, org, user string) ([]push.Device, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, token, platform, app_version, updated FROM push_devices
		WHERE org = ? AND usr = ? ORDER BY id`, org, user)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []push.Device
	for rows.Next() {
		d := push.Device{Org: org, User: user}
		var updated int64
		if err := rows.Scan(&d.ID, &d.Token, &d.Platform, &d.AppVersion, &updated); err != nil {
			return nil, translate(err)
		}
		d.Updated = fromMS(updated)
		out = append(out, d)
	}
	return out, translate(rows.Err())
}

// UserDevices implements push.Store: one query per organisation and up to
// 500 users.
func (s *Store) UserDevices(ctx context.Context, users []push.UserRef) ([]push.Device, error) {
	byOrg := map[string][]any{}
	var orgs []string
	for _, u := range users {
		if _, ok := byOrg[u.Org]; !ok {
			orgs = append(orgs, u.Org)
		}
		byOrg[u.Org] = append(byOrg[u.Org], u.User)
	}
	var out []push.Device
	for _, org := range orgs {
		us := byOrg[org]
		for start := 0; start < len(us); start += rowChunk {
			chunk := us[start:min(start+rowChunk, len(us))]
			rows, err := s.r.QueryContext(ctx, `SELECT usr, id, token, platform, app_version, updated FROM push_devices
				WHERE org = ? AND usr IN (`+strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+`) ORDER BY usr, id`,
				append([]any{org}, chunk...)...)
			if err != nil {
				return nil, translate(err)
			}
			for rows.Next() {
				d := push.Device{Org: org}
				var updated int64
				if err := rows.Scan(&d.User, &d.ID, &d.Token, &d.Platform, &d.AppVersion, &updated); err != nil {
					rows.Close()
					return nil, translate(err)
				}
				d.Updated = fromMS(updated)
				out = append(out, d)
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return nil, translate(err)
			}
		}
	}
	return out, nil
}

// DeleteDevice implements push.Store.
func (s *Store) DeleteDevice(ctx context.Context, org, user, id string) (bool, error) {
	return s.deleteDevice(ctx, `DELETE FROM push_devices WHERE org = ? AND usr = ? AND id = ?`, org, user, id)
}

// DeleteToken implements push.Store.
func (s *Store) DeleteToken(ctx context.Context, org, user, id, token string) (bool, error) {
	return s.deleteDevice(ctx, `DELETE FROM push_devices WHERE org = ? AND usr = ? AND id = ? AND token = ?`, org, user, id, token)
}

func (s *Store) deleteDevice(ctx context.Context, q string, args ...any) (bool, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		res, err := tx.exec(ctx, q, args...)
		if err != nil {
			return translate(err)
		}
		n, err = res.RowsAffected()
		return translate(err)
	})
	return n > 0, err
}

// PutPrefs implements push.Store.
func (s *Store) PutPrefs(ctx context.Context, org, user string, p push.Prefs) error {
	muted, err := jsonList(p.Muted)
	if err != nil {
		return err
	}
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		_, err := tx.exec(ctx, `INSERT INTO push_prefs(org, usr, muted) VALUES (?, ?, ?)
			ON CONFLICT (org, usr) DO UPDATE SET muted = excluded.muted`, org, user, muted)
		return translate(err)
	})
}

// Prefs implements push.Store.
func (s *Store) Prefs(ctx context.Context, org, user string) (push.Prefs, error) {
	var raw []byte
	err := s.r.QueryRowContext(ctx, `SELECT muted FROM push_prefs WHERE org = ? AND usr = ?`, org, user).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return push.Prefs{}, nil
	}
	if err != nil {
		return push.Prefs{}, translate(err)
	}
	muted, err := parseList(raw)
	return push.Prefs{Muted: muted}, err
}

// PutQuietHours implements push.Store.
func (s *Store) PutQuietHours(ctx context.Context, org string, q push.QuietHours) error {
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		_, err := tx.exec(ctx, `INSERT INTO push_quiet(org, start_min, end_min) VALUES (?, ?, ?)
			ON CONFLICT (org) DO UPDATE SET start_min = excluded.start_min, end_min = excluded.end_min`, org, q.Start, q.End)
		return translate(err)
	})
}

// QuietHours implements push.Store.
func (s *Store) QuietHours(ctx context.Context, org string) (push.QuietHours, error) {
	var q push.QuietHours
	err := s.r.QueryRowContext(ctx, `SELECT start_min, end_min FROM push_quiet WHERE org = ?`, org).Scan(&q.Start, &q.End)
	if errors.Is(err, sql.ErrNoRows) {
		return push.QuietHours{}, nil
	}
	return q, translate(err)
}

// Orgs implements push.Store.
func (s *Store) Orgs(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM orgs ORDER BY id`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, translate(err)
		}
		out = append(out, id)
	}
	return out, translate(rows.Err())
}

// TailCursor implements push.Store.
func (s *Store) TailCursor(ctx context.Context, org string) (int64, error) {
	var c int64
	err := s.r.QueryRowContext(ctx, `SELECT cursor FROM push_tail WHERE org = ?`, org).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return c, translate(err)
}

// TailCursors implements push.Store.
func (s *Store) TailCursors(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT org, cursor FROM push_tail`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var org string
		var c int64
		if err := rows.Scan(&org, &c); err != nil {
			return nil, translate(err)
		}
		out[org] = c
	}
	return out, translate(rows.Err())
}

// AcquireTail implements push.Store.
func (s *Store) AcquireTail(ctx context.Context, org, owner string, now, until time.Time) (cursor int64, ok bool, err error) {
	err = s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		if _, err := tx.exec(ctx, `INSERT INTO push_tail(org, cursor, owner, lease_until) VALUES (?, 0, ?, ?)
			ON CONFLICT (org) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
			WHERE push_tail.owner = excluded.owner OR push_tail.lease_until <= ?`, org, owner, ms(until), ms(now)); err != nil {
			return translate(err)
		}
		var holder string
		if err := tx.conn.QueryRowContext(ctx, `SELECT cursor, owner FROM push_tail WHERE org = ?`, org).Scan(&cursor, &holder); err != nil {
			return translate(err)
		}
		ok = holder == owner
		return nil
	})
	return cursor, ok, err
}

// AdvanceTail implements push.Store.
func (s *Store) AdvanceTail(ctx context.Context, org, owner string, cursor int64, until time.Time) (bool, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		res, err := tx.exec(ctx, `UPDATE push_tail SET cursor = MAX(cursor, ?), lease_until = ? WHERE org = ? AND owner = ?`,
			cursor, ms(until), org, owner)
		if err != nil {
			return translate(err)
		}
		n, err = res.RowsAffected()
		return translate(err)
	})
	return n > 0, err
}

// Enqueue implements push.Store: one transaction, INSERT OR IGNORE by id.
func (s *Store) Enqueue(ctx context.Context, ns []push.Notification) (int, error) {
	var inserted int64
	err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		for _, n := range ns {
			delivered, err := jsonList(n.Delivered)
			if err != nil {
				return err
			}
			res, err := tx.exec(ctx, `INSERT OR IGNORE INTO push_outbox(id, org, usr, trig, category, coll, doc_id, seq, urgent,
				title, body, created, due, status, attempts, last_error, delivered, lease_owner, lease_until, sent_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, 0)`,
				n.ID, n.Org, n.User, n.Trigger, n.Category, n.Collection, n.DocID, n.Seq, boolInt(n.Urgent),
				n.Title, n.Body, ms(n.Created), ms(n.Due), statusOr(n.Status), n.Attempts, n.LastError, delivered)
			if err != nil {
				return translate(err)
			}
			k, err := res.RowsAffected()
			if err != nil {
				return translate(err)
			}
			inserted += k
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(inserted), nil
}

func statusOr(st string) string {
	if st == "" {
		return push.StatusPending
	}
	return st
}

const outboxCols = `id, org, usr, trig, category, coll, doc_id, seq, urgent, title, body, created, due, status, attempts,
	last_error, delivered, lease_owner, lease_until, sent_at`

// Claim implements push.Store: one UPDATE ... RETURNING on the single
// writer, so two claims never return one row.
func (s *Store) Claim(ctx context.Context, owner string, now, until time.Time, limit int) ([]push.Notification, error) {
	// A reader answers the idle poll, without taking the write lock.
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM push_outbox WHERE status = 'pending' AND due <= ? AND lease_until <= ? LIMIT 1`,
		ms(now), ms(now)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err)
	}
	var out []push.Notification
	err = s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		out = out[:0]
		rows, err := tx.query(ctx, `UPDATE push_outbox SET lease_owner = ?, lease_until = ?
			WHERE id IN (SELECT id FROM push_outbox WHERE status = 'pending' AND due <= ? AND lease_until <= ?
				ORDER BY due, id LIMIT ?)
			RETURNING `+outboxCols, owner, ms(until), ms(now), ms(now), limit)
		if err != nil {
			return translate(err)
		}
		defer rows.Close()
		for rows.Next() {
			n, err := scanNotification(rows)
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		return translate(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Complete implements push.Store: one transaction for the batch.
func (s *Store) Complete(ctx context.Context, owner string, ns []push.Notification) (int, error) {
	var k int64
	err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		k = 0
		for _, n := range ns {
			delivered, err := jsonList(n.Delivered)
			if err != nil {
				return err
			}
			res, err := tx.exec(ctx, `UPDATE push_outbox SET status = ?, attempts = ?, last_error = ?, delivered = ?, due = ?,
				sent_at = ?, lease_owner = '', lease_until = 0 WHERE id = ? AND lease_owner = ?`,
				statusOr(n.Status), n.Attempts, n.LastError, delivered, ms(n.Due), nullableMS(n.SentAt), n.ID, owner)
			if err != nil {
				return translate(err)
			}
			m, err := res.RowsAffected()
			if err != nil {
				return translate(err)
			}
			k += m
		}
		return nil
	})
	return int(k), err
}

func nullableMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

// Prune implements push.Store, 1000 rows per transaction so pushes are
// never held up for long.
func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
			res, err := tx.exec(ctx, `DELETE FROM push_outbox WHERE id IN (SELECT id FROM push_outbox
				WHERE status IN ('sent', 'dead') AND due < ? LIMIT 1000)`, ms(before))
			if err != nil {
				return translate(err)
			}
			n, err = res.RowsAffected()
			return translate(err)
		})
		total += int(n)
		if err != nil || n < 1000 {
			return total, err
		}
	}
}

// OutboxDepth implements push.Store, from the (status, due) index.
func (s *Store) OutboxDepth(ctx context.Context) (pending, dead int, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM push_outbox WHERE status = 'pending'),
		(SELECT COUNT(*) FROM push_outbox WHERE status = 'dead')`).Scan(&pending, &dead)
	return pending, dead, translate(err)
}

// Notification implements push.Store.
func (s *Store) Notification(ctx context.Context, id string) (push.Notification, error) {
	return queryOne(ctx, s, engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no notification %q", id), scanNotification,
		`SELECT `+outboxCols+` FROM push_outbox WHERE id = ?`, id)
}

func scanNotification(rows *sql.Rows) (push.Notification, error) {
	var n push.Notification
	var urgent int
	var created, due, leaseUntil, sentAt int64
	var delivered []byte
	if err := rows.Scan(&n.ID, &n.Org, &n.User, &n.Trigger, &n.Category, &n.Collection, &n.DocID, &n.Seq, &urgent,
		&n.Title, &n.Body, &created, &due, &n.Status, &n.Attempts, &n.LastError, &delivered, &n.LeaseOwner,
		&leaseUntil, &sentAt); err != nil {
		return n, translate(err)
	}
	n.Urgent = urgent != 0
	n.Created, n.Due = fromMS(created), fromMS(due)
	if leaseUntil != 0 {
		n.LeaseUntil = fromMS(leaseUntil)
	}
	if sentAt != 0 {
		n.SentAt = fromMS(sentAt)
	}
	var err error
	n.Delivered, err = parseList(delivered)
	return n, err
}
