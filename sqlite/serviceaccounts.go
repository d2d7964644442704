package sqlite

import (
	"context"
	"database/sql"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

var _ identity.ServiceAccountStore = (*Store)(nil)

// migrationServiceAccounts creates the service accounts (migration 7). An
// account is read by its id alone: the id is in its API key.
const migrationServiceAccounts = `
CREATE TABLE service_accounts (
	id         TEXT PRIMARY KEY,
	org        TEXT NOT NULL,
	name       TEXT NOT NULL,
	roles      BLOB NOT NULL,    -- JSON array
	key_hash   BLOB NOT NULL,    -- SHA-256 of the current key's secret
	prev_hash  BLOB,             -- SHA-256 of the previous key's secret
	prev_until INTEGER,          -- unix milliseconds; NULL: no previous key
	revoked_at INTEGER,          -- NULL while live
	version    INTEGER NOT NULL,
	created    INTEGER NOT NULL,
	updated    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX service_accounts_by_org ON service_accounts(org, id);
`

// PutServiceAccount implements identity.ServiceAccountStore.
func (s *Store) PutServiceAccount(ctx context.Context, a *identity.ServiceAccount) error {
	roles, err := jsonList(a.Roles)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		if a.Version == 0 {
			_, err := tx.exec(ctx, `INSERT INTO service_accounts(id, org, name, roles, key_hash, prev_hash, prev_until, revoked_at, version, created, updated)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`, a.ID, a.Org, a.Name, roles, a.KeyHash, a.PrevHash, nullMS(a.PrevUntil),
				nullMS(a.RevokedAt), ms(a.Created), ms(a.Updated))
			if pk, _ := constraint(err); pk {
				return errAccountVersion(a)
			}
			return translate(err)
		}
		res, err := tx.exec(ctx, `UPDATE service_accounts SET org = ?, name = ?, roles = ?, key_hash = ?, prev_hash = ?, prev_until = ?,
			revoked_at = ?, version = version + 1, created = ?, updated = ? WHERE id = ? AND version = ?`,
			a.Org, a.Name, roles, a.KeyHash, a.PrevHash, nullMS(a.PrevUntil), nullMS(a.RevokedAt), ms(a.Created), ms(a.Updated),
			a.ID, a.Version)
		if err != nil {
			return translate(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return translate(err)
		} else if n == 0 {
			exists, err := rowExists(ctx, tx, `SELECT 1 FROM service_accounts WHERE id = ?`, a.ID)
			if err != nil {
				return err
			}
			if !exists {
				return notFound("service account")
			}
			return errAccountVersion(a)
		}
		return nil
	})
	if err != nil {
		return err
	}
	a.Version++
	return nil
}

const accountCols = `id, org, name, roles, key_hash, prev_hash, prev_until, revoked_at, version, created, updated`

// ServiceAccount implements identity.ServiceAccountStore.
func (s *Store) ServiceAccount(ctx context.Context, id string) (*identity.ServiceAccount, error) {
	return queryOne(ctx, s, notFound("service account"), scanAccount, `SELECT `+accountCols+` FROM service_accounts WHERE id = ?`, id)
}

// ServiceAccounts implements identity.ServiceAccountStore.
func (s *Store) ServiceAccounts(ctx context.Context, org string) ([]*identity.ServiceAccount, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+accountCols+` FROM service_accounts WHERE org = ? ORDER BY id`, org)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []*identity.ServiceAccount
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, translate(rows.Err())
}

func scanAccount(rows *sql.Rows) (*identity.ServiceAccount, error) {
	a := &identity.ServiceAccount{}
	var roles []byte
	var prevUntil, revoked sql.NullInt64
	var created, updated int64
	if err := rows.Scan(&a.ID, &a.Org, &a.Name, &roles, &a.KeyHash, &a.PrevHash, &prevUntil, &revoked, &a.Version, &created, &updated); err != nil {
		return nil, translate(err)
	}
	var err error
	if a.Roles, err = parseList(roles); err != nil {
		return nil, err
	}
	if prevUntil.Valid {
		a.PrevUntil = fromMS(prevUntil.Int64)
	}
	if revoked.Valid {
		a.RevokedAt = fromMS(revoked.Int64)
	}
	a.Created, a.Updated = fromMS(created), fromMS(updated)
	return a, nil
}

func errAccountVersion(a *identity.ServiceAccount) error {
	return engine.Errorf(engine.KindConflict, identity.CodeVersionMismatch, "/version",
		"the service account changed since version %d was read", a.Version)
}
