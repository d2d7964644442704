package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

var _ workflow.MatrixStore = (*Store)(nil)

// migrationWorkflow (5) keeps every version of every organisation's
// responsibility matrix (old orders route by the version they started with)
// and the organisations the overdue sweep visits.
const migrationWorkflow = `
CREATE TABLE matrices (
	org     TEXT NOT NULL,
	version INTEGER NOT NULL,
	body    BLOB NOT NULL,    -- the matrix JSON as put
	by_user TEXT NOT NULL,
	created INTEGER NOT NULL, -- unix milliseconds
	PRIMARY KEY (org, version)
) WITHOUT ROWID;
CREATE TABLE workflow_orgs (
	org TEXT PRIMARY KEY
) WITHOUT ROWID;
`

// LatestMatrix implements workflow.MatrixStore.
func (s *Store) LatestMatrix(ctx context.Context, org string) (workflow.StoredMatrix, bool, error) {
	return s.matrix(ctx, `SELECT version, body, by_user, created FROM matrices WHERE org = ? ORDER BY version DESC LIMIT 1`, org)
}

// MatrixVersion implements workflow.MatrixStore.
func (s *Store) MatrixVersion(ctx context.Context, org string, version int64) (workflow.StoredMatrix, bool, error) {
	return s.matrix(ctx, `SELECT version, body, by_user, created FROM matrices WHERE org = ? AND version = ?`, org, version)
}

func (s *Store) matrix(ctx context.Context, q string, org string, args ...any) (workflow.StoredMatrix, bool, error) {
	m := workflow.StoredMatrix{Org: org}
	var created int64
	err := s.r.QueryRowContext(ctx, q, append([]any{org}, args...)...).Scan(&m.Version, &m.Raw, &m.By, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return workflow.StoredMatrix{Org: org}, false, nil
	}
	if err != nil {
		return m, false, translate(err)
	}
	m.Created = fromMS(created)
	return m, true, nil
}

// InsertMatrix implements workflow.MatrixStore: the primary key makes one
// of two concurrent inserts of a version fail.
func (s *Store) InsertMatrix(ctx context.Context, m workflow.StoredMatrix) error {
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		_, err := tx.exec(ctx, `INSERT INTO matrices(org, version, body, by_user, created) VALUES (?, ?, ?, ?, ?)`,
			m.Org, m.Version, m.Raw, m.By, ms(m.Created))
		if pk, _ := constraint(err); pk {
			return engine.Errorf(engine.KindConflict, engine.CodeAlreadyExists, "", "matrix version %d exists", m.Version)
		}
		return translate(err)
	})
}

// NoteWorkflowOrg implements workflow.MatrixStore.
func (s *Store) NoteWorkflowOrg(ctx context.Context, org string) error {
	return s.write(ctx, func(ctx context.Context, tx *writerConn) error {
		_, err := tx.exec(ctx, `INSERT OR IGNORE INTO workflow_orgs(org) VALUES (?)`, org)
		return translate(err)
	})
}

// WorkflowOrgs implements workflow.MatrixStore.
func (s *Store) WorkflowOrgs(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT org FROM workflow_orgs ORDER BY org`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, translate(err)
		}
		out = append(out, o)
	}
	return out, translate(rows.Err())
}
