package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order, each in its own transaction, and recorded
// in schema_migrations. Never edit a released migration: add a new one.
var migrations = []string{
	// 1: documents, the per-scope change feed, the mutation log, server metadata.
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) WITHOUT ROWID;
INSERT INTO meta(key, value) VALUES ('seq', 0);

-- The latest state of every document; a delete leaves a tombstone (deleted = 1, no body).
CREATE TABLE docs (
	org        TEXT NOT NULL,
	coll       TEXT NOT NULL,
	id         TEXT NOT NULL,
	owner      TEXT NOT NULL,
	version    INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	deleted    INTEGER NOT NULL,
	body       BLOB,
	fields     BLOB NOT NULL,   -- JSON: field -> {v, d}
	feed       BLOB NOT NULL,   -- JSON: scope -> {s: seq of its feed row, r: revoked}
	updated_at INTEGER NOT NULL, -- unix milliseconds
	updated_by TEXT NOT NULL,
	-- The device and mutation id that created the document: a retried
	-- create is recognised here, so applied creates (most pushes) need no
	-- row in the mutation log.
	origin_device TEXT NOT NULL,
	origin_mid    TEXT NOT NULL,
	PRIMARY KEY (org, coll, id)
) WITHOUT ROWID;

-- One row per (scope, document): the document's latest change under that
-- scope. Keyed by seq so a pull is one ordered range scan of one scope.
CREATE TABLE feed (
	org     TEXT NOT NULL,
	scope   TEXT NOT NULL,
	seq     INTEGER NOT NULL,
	coll    TEXT NOT NULL,
	id      TEXT NOT NULL,
	revoked INTEGER NOT NULL,
	PRIMARY KEY (org, scope, seq, coll, id)
) WITHOUT ROWID;

-- Exactly-once: the recorded outcome of every mutation a device sent,
-- except applied creates, which docs.origin_* records.
CREATE TABLE mutations (
	org     TEXT NOT NULL,
	usr     TEXT NOT NULL,
	device  TEXT NOT NULL,
	mid     TEXT NOT NULL,
	outcome BLOB NOT NULL,
	at      INTEGER NOT NULL,
	PRIMARY KEY (org, usr, device, mid)
) WITHOUT ROWID;
`,
	// 2: the identity directory: organisations, users, teams, device sessions.
	`
CREATE TABLE orgs (
	id        TEXT PRIMARY KEY,
	name      TEXT NOT NULL,
	time_zone TEXT NOT NULL,
	roles     BLOB NOT NULL,    -- JSON array
	created   INTEGER NOT NULL  -- unix milliseconds, like every time below
) WITHOUT ROWID;

-- A user row is the whole record, lists as JSON in the caller's order, so
-- reading a user is one primary-key lookup. Emails are stored lower-case and
-- are unique across the installation.
CREATE TABLE users (
	org           TEXT NOT NULL,
	id            TEXT NOT NULL,
	email         TEXT NOT NULL UNIQUE,
	name          TEXT NOT NULL,
	roles         BLOB NOT NULL,
	teams         BLOB NOT NULL,
	leads         BLOB NOT NULL,
	password_hash TEXT NOT NULL,
	disabled      INTEGER NOT NULL,
	version       INTEGER NOT NULL,
	created       INTEGER NOT NULL,
	updated       INTEGER NOT NULL,
	PRIMARY KEY (org, id)
) WITHOUT ROWID;

-- The index of users by role, team and led team: one row per (kind, value)
-- of a user, rewritten with the user in the same transaction. Keyed so that
-- "members of team T after id X" is one ordered range scan, which neither a
-- JSON column nor an index on it gives.
CREATE TABLE user_memberships (
	org   TEXT NOT NULL,
	kind  TEXT NOT NULL, -- role, team, leads
	value TEXT NOT NULL,
	usr   TEXT NOT NULL,
	PRIMARY KEY (org, kind, value, usr)
) WITHOUT ROWID;
CREATE INDEX user_memberships_by_user ON user_memberships(org, usr);

CREATE TABLE teams (
	org     TEXT NOT NULL,
	id      TEXT NOT NULL,
	name    TEXT NOT NULL,
	created INTEGER NOT NULL,
	PRIMARY KEY (org, id)
) WITHOUT ROWID;

CREATE TABLE sessions (
	id           TEXT PRIMARY KEY,
	org          TEXT NOT NULL,
	usr          TEXT NOT NULL,
	device       TEXT NOT NULL,
	generation   INTEGER NOT NULL,
	token_hash   BLOB,
	prev_hash    BLOB,
	rotated_at   INTEGER NOT NULL,
	created      INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	revoked_at   INTEGER,          -- NULL while the session is live
	revoke_cause TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_device ON sessions(org, usr, device);
`,
	// 3: push notifications (outbox, devices, preferences). Owned by the push feature.
	migrationPush,
	// 4: live stream (change index, presence). Owned by the stream feature.
	migrationStream,
	// 5: workflows (responsibility matrices). Owned by the workflow feature.
	migrationWorkflow,
	// 6: history retention (retention.go).
	migrationRetention,
	// 7: service accounts (serviceaccounts.go).
	migrationServiceAccounts,
	// 8: webhooks (webhook.go).
	migrationWebhooks,
	// 9: device registrations for device.registered webhooks (notify.go).
	migrationDeviceRegistrations,
}

func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	var have int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("sqlite: read schema version: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("sqlite: the database is at schema version %d, newer than this binary knows (%d); upgrade fieldsync", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, datetime('now'))`, v); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlite: migration %d: %w", v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", v, err)
		}
	}
	return nil
}
