package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

var _ identity.Store = (*Store)(nil)

// The identity directory lives in the tables of migration 2. Writes run as
// small transactions on the writer connection (Store.write); reads use the
// reader pool. Times are stored as unix milliseconds, so they come back with
// millisecond precision, in UTC.

// maxUsers caps one Users answer.
const maxUsers = 1000

// PutOrg implements identity.Store.
func (s *Store) PutOrg(ctx context.Context, o *identity.Org) error {
	roles, err := jsonList(o.Roles)
	if err != nil {
		return err
	}
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		_, err := tx.exec(ctx, `INSERT INTO orgs(id, name, time_zone, roles, created) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone,
			roles = excluded.roles, created = excluded.created`,
			o.ID, o.Name, o.TimeZone, roles, ms(o.Created))
		return translate(err)
	})
}

// Org implements identity.Store.
func (s *Store) Org(ctx context.Context, id string) (*identity.Org, error) {
	o := &identity.Org{ID: id}
	var roles []byte
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT name, time_zone, roles, created FROM orgs WHERE id = ?`, id).
		Scan(&o.Name, &o.TimeZone, &roles, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("organisation")
	}
	if err != nil {
		return nil, translate(err)
	}
	if o.Roles, err = parseList(roles); err != nil {
		return nil, err
	}
	o.Created = fromMS(created)
	return o, nil
}

// CreateUser implements identity.Store.
func (s *Store) CreateUser(ctx context.Context, u *identity.User) error {
	row, err := newUserRow(u)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		_, err := tx.exec(ctx, `INSERT INTO users(org, id, email, name, roles, teams, leads, password_hash, disabled, version, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
			u.Org, u.ID, row.email, u.Name, row.roles, row.teams, row.leads, u.PasswordHash, boolInt(u.Disabled), ms(u.Created), ms(u.Updated))
		if pk, unique := constraint(err); pk || unique {
			// Both may be taken, and SQLite does not say in which order it
			// checks: the id answers first, whatever the error names.
			exists, lerr := userExists(ctx, tx, u.Org, u.ID)
			if lerr != nil {
				return lerr
			}
			if pk || exists {
				return errUserExists(u)
			}
			return errEmailTaken(row.email)
		}
		if err != nil {
			return translate(err)
		}
		return writeMemberships(ctx, tx, u)
	})
	if err != nil {
		return err
	}
	u.Email, u.Version = row.email, 1
	return nil
}

// UpdateUser implements identity.Store.
func (s *Store) UpdateUser(ctx context.Context, u *identity.User) error {
	row, err := newUserRow(u)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		res, err := tx.exec(ctx, `UPDATE users SET email = ?, name = ?, roles = ?, teams = ?, leads = ?, password_hash = ?,
			disabled = ?, version = version + 1, updated = ? WHERE org = ? AND id = ? AND version = ?`,
			row.email, u.Name, row.roles, row.teams, row.leads, u.PasswordHash, boolInt(u.Disabled), ms(u.Updated),
			u.Org, u.ID, u.Version)
		if _, unique := constraint(err); unique {
			return errEmailTaken(row.email)
		}
		if err != nil {
			return translate(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return translate(err)
		} else if n == 0 {
			exists, err := userExists(ctx, tx, u.Org, u.ID)
			if err != nil {
				return err
			}
			if !exists {
				return notFound("user")
			}
			return errUserVersion(u)
		}
		if _, err := tx.exec(ctx, `DELETE FROM user_memberships WHERE org = ? AND usr = ?`, u.Org, u.ID); err != nil {
			return translate(err)
		}
		return writeMemberships(ctx, tx, u)
	})
	if err != nil {
		return err
	}
	u.Email = row.email
	u.Version++
	return nil
}

// User implements identity.Store.
func (s *Store) User(ctx context.Context, org, id string) (*identity.User, error) {
	rows, err := s.userStmt.QueryContext(ctx, org, id) // prepared once: the server reads it on every request
	return firstRow(rows, err, notFound("user"), scanUser)
}

const userSQL = `SELECT ` + userCols + ` FROM users WHERE org = ? AND id = ?`

// UserByEmail implements identity.Store.
func (s *Store) UserByEmail(ctx context.Context, email string) (*identity.User, error) {
	return s.oneUser(ctx, `SELECT `+userCols+` FROM users WHERE email = ?`, strings.ToLower(email))
}

// Users implements identity.Store. Without a membership filter it is one
// range scan of the users' primary key; with one, one range scan of
// user_memberships' primary key (org, kind, value, usr), which yields the
// users in id order, joined to each further filter and to users by primary
// key.
func (s *Store) Users(ctx context.Context, org string, f identity.UserFilter) ([]*identity.User, error) {
	q, args := usersQuery(org, f)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []*identity.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, translate(rows.Err())
}

// usersQuery is the statement of Users.
func usersQuery(org string, f identity.UserFilter) (string, []any) {
	limit := f.Limit
	if limit <= 0 || limit > maxUsers {
		limit = maxUsers
	}
	type member struct{ kind, value string }
	var members []member
	for _, m := range []member{{"team", f.Team}, {"leads", f.Leads}, {"role", f.Role}} {
		if m.value != "" {
			members = append(members, m)
		}
	}
	var q strings.Builder
	var args []any
	if len(members) == 0 {
		q.WriteString(`SELECT ` + userCols + ` FROM users WHERE org = ? AND id > ? ORDER BY id LIMIT ?`)
		args = append(args, org, f.After, limit)
	} else {
		q.WriteString(`SELECT ` + prefixed("u.", userCols) + ` FROM user_memberships m0 JOIN users u ON u.org = m0.org AND u.id = m0.usr`)
		for i, m := range members[1:] {
			fmt.Fprintf(&q, ` JOIN user_memberships m%[1]d ON m%[1]d.org = m0.org AND m%[1]d.kind = ? AND m%[1]d.value = ? AND m%[1]d.usr = m0.usr`, i+1)
			args = append(args, m.kind, m.value)
		}
		q.WriteString(` WHERE m0.org = ? AND m0.kind = ? AND m0.value = ? AND m0.usr > ? ORDER BY m0.usr LIMIT ?`)
		args = append(args, org, members[0].kind, members[0].value, f.After, limit)
	}
	return q.String(), args
}

// PutTeam implements identity.Store. A rename keeps the creation time.
func (s *Store) PutTeam(ctx context.Context, t *identity.Team) error {
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		_, err := tx.exec(ctx, `INSERT INTO teams(org, id, name, created) VALUES (?, ?, ?, ?)
			ON CONFLICT (org, id) DO UPDATE SET name = excluded.name`, t.Org, t.ID, t.Name, ms(t.Created))
		return translate(err)
	})
}

// Team implements identity.Store.
func (s *Store) Team(ctx context.Context, org, id string) (*identity.Team, error) {
	t := &identity.Team{Org: org, ID: id}
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT name, created FROM teams WHERE org = ? AND id = ?`, org, id).Scan(&t.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("team")
	}
	if err != nil {
		return nil, translate(err)
	}
	t.Created = fromMS(created)
	return t, nil
}

// Teams implements identity.Store.
func (s *Store) Teams(ctx context.Context, org string) ([]*identity.Team, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, created FROM teams WHERE org = ? ORDER BY id`, org)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []*identity.Team
	for rows.Next() {
		t := &identity.Team{Org: org}
		var created int64
		if err := rows.Scan(&t.ID, &t.Name, &created); err != nil {
			return nil, translate(err)
		}
		t.Created = fromMS(created)
		out = append(out, t)
	}
	return out, translate(rows.Err())
}

// CreateSession implements identity.Store; a taken id is already_exists.
func (s *Store) CreateSession(ctx context.Context, ss *identity.Session) error {
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		_, err := tx.exec(ctx, `INSERT INTO sessions(id, org, usr, device, generation, token_hash, prev_hash, rotated_at, created, expires_at, revoked_at, revoke_cause)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ss.ID, ss.Org, ss.User, ss.Device, ss.Generation, ss.TokenHash, ss.PrevHash, ms(ss.RotatedAt), ms(ss.Created),
			ms(ss.ExpiresAt), nullMS(ss.RevokedAt), ss.RevokeCause)
		if pk, unique := constraint(err); pk || unique {
			return engine.Wrap(err, engine.KindConflict, engine.CodeAlreadyExists, "a session with this id exists")
		}
		return translate(err)
	})
}

// Session implements identity.Store.
func (s *Store) Session(ctx context.Context, id string) (*identity.Session, error) {
	return queryOne(ctx, s, notFound("session"), scanSession, `SELECT `+sessionCols+` FROM sessions WHERE id = ?`, id)
}

// RotateSession implements identity.Store: one conditional UPDATE, so of
// several rotations from one generation exactly one matches. It writes the
// fields a refresh changes (Generation, TokenHash, PrevHash, RotatedAt,
// ExpiresAt); the session's owner, device and creation stay as created.
func (s *Store) RotateSession(ctx context.Context, ss *identity.Session, fromGeneration int64) error {
	if ss.Generation <= fromGeneration {
		return errGenerationBackwards(ss, fromGeneration)
	}
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		res, err := tx.exec(ctx, `UPDATE sessions SET generation = ?, token_hash = ?, prev_hash = ?, rotated_at = ?, expires_at = ?
			WHERE id = ? AND generation = ? AND revoked_at IS NULL`,
			ss.Generation, ss.TokenHash, ss.PrevHash, ms(ss.RotatedAt), ms(ss.ExpiresAt), ss.ID, fromGeneration)
		if err != nil {
			return translate(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return translate(err)
		}
		exists, err := rowExists(ctx, tx, `SELECT 1 FROM sessions WHERE id = ?`, ss.ID)
		if err != nil {
			return err
		}
		if !exists {
			return notFound("session")
		}
		return errSessionMoved(fromGeneration)
	})
}

// RevokeSessions implements identity.Store: sessions revoked already keep
// their first revocation and are not counted. An expired session that was
// never revoked is revoked and counted like a live one.
func (s *Store) RevokeSessions(ctx context.Context, org, user, device, cause string, at time.Time) (int, error) {
	if at.IsZero() {
		return 0, errZeroRevokeTime()
	}
	q := `UPDATE sessions SET revoked_at = ?, revoke_cause = ? WHERE org = ? AND usr = ? AND revoked_at IS NULL`
	args := []any{ms(at), cause, org, user}
	if device != "" {
		q += ` AND device = ?`
		args = append(args, device)
	}
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		res, err := tx.exec(ctx, q, args...)
		if err != nil {
			return translate(err)
		}
		n, err = res.RowsAffected()
		return translate(err)
	})
	return int(n), err
}

// RevokeSession implements identity.Store; revoking a revoked session
// keeps its first revocation.
func (s *Store) RevokeSession(ctx context.Context, id, cause string, at time.Time) error {
	if at.IsZero() {
		return errZeroRevokeTime()
	}
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		res, err := tx.exec(ctx, `UPDATE sessions SET revoked_at = ?, revoke_cause = ? WHERE id = ? AND revoked_at IS NULL`, ms(at), cause, id)
		if err != nil {
			return translate(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return translate(err)
		}
		exists, err := rowExists(ctx, tx, `SELECT 1 FROM sessions WHERE id = ?`, id)
		if err == nil && !exists {
			err = notFound("session")
		}
		return err
	})
}

// PruneSessions implements identity.Store. Rotations overwrite the
// session here, so the sessions themselves are all there is to prune.
func (s *Store) PruneSessions(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		res, err := tx.exec(ctx, `DELETE FROM sessions WHERE expires_at < ? OR revoked_at < ?`, ms(before), ms(before))
		if err != nil {
			return translate(err)
		}
		n, err = res.RowsAffected()
		return translate(err)
	})
	return int(n), err
}

// Sessions implements identity.Store: the user's sessions in id order,
// revoked and expired ones included.
func (s *Store) Sessions(ctx context.Context, org, user string) ([]*identity.Session, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE org = ? AND usr = ? ORDER BY id`, org, user)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []*identity.Session
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ss)
	}
	return out, translate(rows.Err())
}

// Rows.

const userCols = `org, id, email, name, roles, teams, leads, password_hash, disabled, version, created, updated`

const sessionCols = `id, org, usr, device, generation, token_hash, prev_hash, rotated_at, created, expires_at, revoked_at, revoke_cause`

// prefixed qualifies every column of a column list.
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, c := range parts {
		parts[i] = prefix + c
	}
	return strings.Join(parts, ", ")
}

// userRow is what a user's row stores beyond the fields written as they are.
type userRow struct {
	email               string
	roles, teams, leads []byte
}

func newUserRow(u *identity.User) (r userRow, err error) {
	r.email = strings.ToLower(u.Email)
	if r.roles, err = jsonList(u.Roles); err != nil {
		return r, err
	}
	if r.teams, err = jsonList(u.Teams); err != nil {
		return r, err
	}
	r.leads, err = jsonList(u.Leads)
	return r, err
}

func (s *Store) oneUser(ctx context.Context, q string, args ...any) (*identity.User, error) {
	return queryOne(ctx, s, notFound("user"), scanUser, q, args...)
}

// queryOne runs q on the readers and scans its first row with scan;
// without a row it answers missing.
func queryOne[T any](ctx context.Context, s *Store, missing error, scan func(*sql.Rows) (T, error), q string, args ...any) (T, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	return firstRow(rows, err, missing, scan)
}

// firstRow scans the first row of a query's rows with scan; without a row
// it answers missing.
func firstRow[T any](rows *sql.Rows, err error, missing error, scan func(*sql.Rows) (T, error)) (T, error) {
	var zero T
	if err != nil {
		return zero, translate(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return zero, translate(err)
		}
		return zero, missing
	}
	return scan(rows)
}

func scanUser(rows *sql.Rows) (*identity.User, error) {
	u := &identity.User{}
	var roles, teams, leads []byte
	var disabled int
	var created, updated int64
	if err := rows.Scan(&u.Org, &u.ID, &u.Email, &u.Name, &roles, &teams, &leads, &u.PasswordHash, &disabled, &u.Version,
		&created, &updated); err != nil {
		return nil, translate(err)
	}
	var err error
	if u.Roles, err = parseList(roles); err != nil {
		return nil, err
	}
	if u.Teams, err = parseList(teams); err != nil {
		return nil, err
	}
	if u.Leads, err = parseList(leads); err != nil {
		return nil, err
	}
	u.Disabled = disabled != 0
	u.Created, u.Updated = fromMS(created), fromMS(updated)
	return u, nil
}

func scanSession(rows *sql.Rows) (*identity.Session, error) {
	ss := &identity.Session{}
	var rotated, created, expires int64
	var revoked sql.NullInt64
	if err := rows.Scan(&ss.ID, &ss.Org, &ss.User, &ss.Device, &ss.Generation, &ss.TokenHash, &ss.PrevHash,
		&rotated, &created, &expires, &revoked, &ss.RevokeCause); err != nil {
		return nil, translate(err)
	}
	ss.RotatedAt, ss.Created, ss.ExpiresAt = fromMS(rotated), fromMS(created), fromMS(expires)
	if revoked.Valid {
		ss.RevokedAt = fromMS(revoked.Int64)
	}
	return ss, nil
}

// writeMemberships indexes the user's roles, teams and led teams.
func writeMemberships(ctx context.Context, tx *writerConn, u *identity.User) error {
	for _, m := range []struct {
		kind   string
		values []string
	}{{"role", u.Roles}, {"team", u.Teams}, {"leads", u.Leads}} {
		for _, v := range m.values {
			// OR IGNORE: a value listed twice is indexed once.
			if _, err := tx.exec(ctx, `INSERT OR IGNORE INTO user_memberships(org, kind, value, usr) VALUES (?, ?, ?, ?)`,
				u.Org, m.kind, v, u.ID); err != nil {
				return translate(err)
			}
		}
	}
	return nil
}

func userExists(ctx context.Context, tx *writerConn, org, id string) (bool, error) {
	return rowExists(ctx, tx, `SELECT 1 FROM users WHERE org = ? AND id = ?`, org, id)
}

func rowExists(ctx context.Context, tx *writerConn, q string, args ...any) (bool, error) {
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return false, translate(err)
	}
	defer rows.Close()
	found := rows.Next()
	return found, translate(rows.Err())
}

// constraint reports whether err is a primary-key or a unique constraint
// violation, by SQLite's extended result code.
func constraint(err error) (primaryKey, unique bool) {
	var se sqlite3.Error
	if !errors.As(err, &se) || se.Code != sqlite3.ErrConstraint {
		return false, false
	}
	return se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey, se.ExtendedCode == sqlite3.ErrConstraintUnique
}

// jsonList encodes a list for a JSON column; nil is stored as [].
func jsonList(l []string) ([]byte, error) {
	if l == nil {
		l = []string{}
	}
	return json.Marshal(l)
}

// parseList decodes a JSON column; an empty list is nil.
func parseList(raw []byte) ([]string, error) {
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("sqlite: decode list %q: %w", raw, err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return slices.Clip(l), nil
}

// ms is the stored form of a time: unix milliseconds. The zero time
// round-trips, to the zero time.
func ms(t time.Time) int64 { return t.UnixMilli() }

func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// The errors of the identity contract.

func notFound(what string) error {
	return engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no such %s", what)
}

func errUserExists(u *identity.User) error {
	return engine.Errorf(engine.KindConflict, identity.CodeUserExists, "/id", "user %q exists in the organisation", u.ID)
}

func errEmailTaken(email string) error {
	return engine.Errorf(engine.KindConflict, identity.CodeEmailTaken, "/email", "the email %s belongs to another user", email)
}

func errUserVersion(u *identity.User) error {
	return engine.Errorf(engine.KindConflict, identity.CodeVersionMismatch, "/version",
		"the user changed since version %d was read", u.Version)
}

func errSessionMoved(from int64) error {
	return engine.Errorf(engine.KindConflict, identity.CodeVersionMismatch, "/generation",
		"the session is no longer live at generation %d", from)
}

func errGenerationBackwards(ss *identity.Session, from int64) error {
	return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/generation",
		"a rotation must move the generation forward, not from %d to %d", from, ss.Generation)
}

func errZeroRevokeTime() error {
	return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/revoked_at", "a revocation needs its time")
}
