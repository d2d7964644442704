package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// HasUsers reports whether any organisation has a user: the start banner
// tells an operator of an empty store how to create the first admin.
func (s *Store) HasUsers(ctx context.Context) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM users LIMIT 1`).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, translate(err)
}

// Backup writes a consistent copy of the database at path to dest while
// other connections, in this process or another (a running server), keep
// reading and writing: VACUUM INTO reads one snapshot in a read transaction
// of the WAL, so the copy holds every transaction committed before it began
// and nothing half-written. It does not take the store's process lock. The
// copy is written next to dest and renamed into place, so dest is either
// absent or complete; an existing dest is an error.
func Backup(ctx context.Context, path, dest string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := os.Stat(dest); err == nil {
		return engine.Errorf(engine.KindConflict, engine.CodeAlreadyExists, "", "%s exists already", dest)
	}
	q := url.Values{}
	q.Set("_busy_timeout", "5000")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	defer db.Close()
	tmp := dest + ".partial"
	os.Remove(tmp) // a crashed earlier attempt
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sqlite: backup: %w", translate(err))
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return err
	}
	return syncFile(filepath.Dir(dest))
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
