package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/webhook"
)

var _ webhook.Store = (*Store)(nil)

// migrationWebhooks creates the webhook subscriptions, the tailer's
// cursors and the deliveries (migration 8, package webhook).
const migrationWebhooks = `
CREATE TABLE webhook_subs (
	org             TEXT NOT NULL,
	id              TEXT NOT NULL,
	url             TEXT NOT NULL,
	events          BLOB NOT NULL,  -- JSON arrays
	roles           BLOB NOT NULL,
	activities      BLOB NOT NULL,
	secret          TEXT NOT NULL,  -- readable: it keys the HMAC
	prev_secret     TEXT NOT NULL,
	prev_until      INTEGER,        -- unix milliseconds, like every time below
	disabled        INTEGER NOT NULL,
	disabled_reason TEXT NOT NULL,
	failures        INTEGER NOT NULL,
	failing_since   INTEGER,
	version         INTEGER NOT NULL,
	created         INTEGER NOT NULL,
	updated         INTEGER NOT NULL,
	PRIMARY KEY (org, id)
) WITHOUT ROWID;

CREATE TABLE webhook_tail (
	org    TEXT PRIMARY KEY,
	cursor INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE webhook_deliveries (
	id          TEXT PRIMARY KEY,  -- deterministic (webhook.DeliveryID): the insert is idempotent
	org         TEXT NOT NULL,
	sub         TEXT NOT NULL,
	event       TEXT NOT NULL,
	seq         INTEGER NOT NULL,
	body        BLOB NOT NULL,
	created     INTEGER NOT NULL,
	due         INTEGER NOT NULL,
	status      TEXT NOT NULL,
	attempts    INTEGER NOT NULL,
	last_error  TEXT NOT NULL,
	lease_owner TEXT NOT NULL,
	lease_until INTEGER NOT NULL,
	sent_at     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, due);
CREATE INDEX webhook_deliveries_sub ON webhook_deliveries(org, sub, created);
`

const subCols = `org, id, url, events, roles, activities, secret, prev_secret, prev_until, disabled, disabled_reason, failures,
	failing_since, version, created, updated`

// PutSubscription implements webhook.Store.
func (s *Store) PutSubscription(ctx context.Context, sub *webhook.Subscription) error {
	var lists [3][]byte
	for i, l := range [][]string{sub.Events, sub.Roles, sub.Activities} {
		b, err := jsonList(l)
		if err != nil {
			return err
		}
		lists[i] = b
	}
	err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		if sub.Version == 0 {
			_, err := tx.exec(ctx, `INSERT INTO webhook_subs(`+subCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
				sub.Org, sub.ID, sub.URL, lists[0], lists[1], lists[2], sub.Secret, sub.PrevSecret, nullMS(sub.PrevUntil),
				boolInt(sub.Disabled), sub.DisabledReason, sub.Failures, nullMS(sub.FailingSince), ms(sub.Created), ms(sub.Updated))
			if pk, _ := constraint(err); pk {
				return errSubVersion(sub)
			}
			return translate(err)
		}
		res, err := tx.exec(ctx, `UPDATE webhook_subs SET url = ?, events = ?, roles = ?, activities = ?, secret = ?, prev_secret = ?,
			prev_until = ?, disabled = ?, disabled_reason = ?, failures = ?, failing_since = ?, version = version + 1, created = ?, updated = ?
			WHERE org = ? AND id = ? AND version = ?`,
			sub.URL, lists[0], lists[1], lists[2], sub.Secret, sub.PrevSecret, nullMS(sub.PrevUntil), boolInt(sub.Disabled),
			sub.DisabledReason, sub.Failures, nullMS(sub.FailingSince), ms(sub.Created), ms(sub.Updated), sub.Org, sub.ID, sub.Version)
		if err != nil {
			return translate(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return translate(err)
		} else if n == 0 {
			exists, err := rowExists(ctx, tx, `SELECT 1 FROM webhook_subs WHERE org = ? AND id = ?`, sub.Org, sub.ID)
			if err != nil {
				return err
			}
			if !exists {
				return notFound("subscription")
			}
			return errSubVersion(sub)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sub.Version++
	return nil
}

func errSubVersion(sub *webhook.Subscription) error {
	return engine.Errorf(engine.KindConflict, identity.CodeVersionMismatch, "/version",
		"the subscription changed since version %d was read", sub.Version)
}

// Subscription implements webhook.Store.
func (s *Store) Subscription(ctx context.Context, org, id string) (*webhook.Subscription, error) {
	subs, err := s.subs(ctx, `SELECT `+subCols+` FROM webhook_subs WHERE org = ? AND id = ?`, org, id)
	if err != nil {
		return nil, err
	}
	if len(subs) == 0 {
		return nil, notFound("subscription")
	}
	return subs[0], nil
}

// Subscriptions implements webhook.Store.
func (s *Store) Subscriptions(ctx context.Context, org string) ([]*webhook.Subscription, error) {
	if org == "" {
		return s.subs(ctx, `SELECT `+subCols+` FROM webhook_subs ORDER BY org, id`)
	}
	return s.subs(ctx, `SELECT `+subCols+` FROM webhook_subs WHERE org = ? ORDER BY id`, org)
}

func (s *Store) subs(ctx context.Context, q string, args ...any) ([]*webhook.Subscription, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []*webhook.Subscription
	for rows.Next() {
		sub := &webhook.Subscription{}
		var lists [3][]byte
		var prevUntil, failingSince sql.NullInt64
		var disabled int
		var created, updated int64
		if err := rows.Scan(&sub.Org, &sub.ID, &sub.URL, &lists[0], &lists[1], &lists[2], &sub.Secret, &sub.PrevSecret, &prevUntil,
			&disabled, &sub.DisabledReason, &sub.Failures, &failingSince, &sub.Version, &created, &updated); err != nil {
			return nil, translate(err)
		}
		for i, dst := range []*[]string{&sub.Events, &sub.Roles, &sub.Activities} {
			l, err := parseList(lists[i])
			if err != nil {
				return nil, err
			}
			*dst = l
		}
		if prevUntil.Valid {
			sub.PrevUntil = fromMS(prevUntil.Int64)
		}
		if failingSince.Valid {
			sub.FailingSince = fromMS(failingSince.Int64)
		}
		sub.Disabled, sub.Created, sub.Updated = disabled != 0, fromMS(created), fromMS(updated)
		out = append(out, sub)
	}
	return out, translate(rows.Err())
}

// WebhookCursor implements webhook.Store.
func (s *Store) WebhookCursor(ctx context.Context, org string) (int64, error) {
	var c int64
	err := s.r.QueryRowContext(ctx, `SELECT cursor FROM webhook_tail WHERE org = ?`, org).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return c, translate(err)
}

// AdvanceWebhookCursor implements webhook.Store.
func (s *Store) AdvanceWebhookCursor(ctx context.Context, org string, cursor int64) error {
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		_, err := tx.exec(ctx, `INSERT INTO webhook_tail(org, cursor) VALUES (?, ?)
			ON CONFLICT (org) DO UPDATE SET cursor = MAX(cursor, excluded.cursor)`, org, cursor)
		return translate(err)
	})
}

// EnqueueDeliveries implements webhook.Store.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []webhook.Delivery) (int, error) {
	var inserted int64
	err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		inserted = 0
		for _, d := range ds {
			res, err := tx.exec(ctx, `INSERT OR IGNORE INTO webhook_deliveries(id, org, sub, event, seq, body, created, due, status,
				attempts, last_error, lease_owner, lease_until, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, 0)`,
				d.ID, d.Org, d.Sub, d.Event, d.Seq, d.Body, ms(d.Created), ms(d.Due), deliveryStatus(d.Status), d.Attempts, d.LastError)
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
	return int(inserted), err
}

func deliveryStatus(st string) string {
	if st == "" {
		return webhook.StatusPending
	}
	return st
}

const deliveryCols = `id, org, sub, event, seq, body, created, due, status, attempts, last_error, lease_owner, lease_until, sent_at`

func scanDeliveries(rows *sql.Rows) ([]webhook.Delivery, error) {
	defer rows.Close()
	var out []webhook.Delivery
	for rows.Next() {
		var d webhook.Delivery
		var created, due, leaseUntil, sentAt int64
		if err := rows.Scan(&d.ID, &d.Org, &d.Sub, &d.Event, &d.Seq, &d.Body, &created, &due, &d.Status, &d.Attempts, &d.LastError,
			&d.LeaseOwner, &leaseUntil, &sentAt); err != nil {
			return nil, translate(err)
		}
		d.Created, d.Due = fromMS(created), fromMS(due)
		if leaseUntil != 0 {
			d.LeaseUntil = fromMS(leaseUntil)
		}
		if sentAt != 0 {
			d.SentAt = fromMS(sentAt)
		}
		out = append(out, d)
	}
	return out, translate(rows.Err())
}

// ClaimDeliveries implements webhook.Store: one UPDATE … RETURNING on the
// single writer, so two claims never win one delivery.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now, until time.Time, limit int) ([]webhook.Delivery, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND due <= ? AND lease_until <= ? LIMIT 1`,
		ms(now), ms(now)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err)
	}
	var out []webhook.Delivery
	err = s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		rows, err := tx.query(ctx, `UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?
			WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND due <= ? AND lease_until <= ?
				ORDER BY due, id LIMIT ?)
			RETURNING `+deliveryCols, owner, ms(until), ms(now), ms(now), limit)
		if err != nil {
			return translate(err)
		}
		out, err = scanDeliveries(rows)
		return err
	})
	return out, err
}

// CompleteDelivery implements webhook.Store.
func (s *Store) CompleteDelivery(ctx context.Context, owner string, d webhook.Delivery) (bool, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		res, err := tx.exec(ctx, `UPDATE webhook_deliveries SET status = ?, attempts = ?, last_error = ?, due = ?, sent_at = ?,
			lease_owner = '', lease_until = 0 WHERE id = ? AND lease_owner = ?`,
			deliveryStatus(d.Status), d.Attempts, d.LastError, ms(d.Due), msOrZero(d.SentAt), d.ID, owner)
		if err != nil {
			return translate(err)
		}
		n, err = res.RowsAffected()
		return translate(err)
	})
	return n > 0, err
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

// Delivery implements webhook.Store.
func (s *Store) Delivery(ctx context.Context, org, id string) (webhook.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries WHERE org = ? AND id = ?`, org, id)
	if err != nil {
		return webhook.Delivery{}, translate(err)
	}
	ds, err := scanDeliveries(rows)
	if err != nil {
		return webhook.Delivery{}, err
	}
	if len(ds) == 0 {
		return webhook.Delivery{}, notFound("delivery")
	}
	return ds[0], nil
}

// Deliveries implements webhook.Store.
func (s *Store) Deliveries(ctx context.Context, org, sub, status string, limit int) ([]webhook.Delivery, error) {
	q := `SELECT ` + deliveryCols + ` FROM webhook_deliveries WHERE org = ? AND sub = ?`
	args := []any{org, sub}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY created DESC, id LIMIT ?`
	rows, err := s.r.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, translate(err)
	}
	return scanDeliveries(rows)
}

// Redeliver implements webhook.Store.
func (s *Store) Redeliver(ctx context.Context, org, id string, now time.Time) error {
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		res, err := tx.exec(ctx, `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, due = ?, lease_owner = '', lease_until = 0
			WHERE org = ? AND id = ?`, ms(now), org, id)
		if err != nil {
			return translate(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return translate(err)
		} else if n == 0 {
			return notFound("delivery")
		}
		return nil
	})
}
