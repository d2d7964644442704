package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Errors of Restore that the command explains with its flags.
var (
	// ErrDataInUse: a running server holds the data directory's store.
	ErrDataInUse = errors.New("the data directory's store is in use")
	// ErrDataHoldsStore: the data directory has a store and force was not
	// given.
	ErrDataHoldsStore = errors.New("the data directory already holds a store")
)

// Copied is what Backup or Restore copied.
type Copied struct {
	DB    string // the database file written
	Bytes int64  // its size
	Keys  int    // signing keys copied
	// Aside is where Restore kept the database it replaced ("" for none).
	Aside string
}

// Backup copies the embedded store of data and its signing keys into to, a
// directory that must not exist yet, consistently while a server keeps
// running on data: the copy holds every push acknowledged before it began.
// (A MongoDB store is backed up with mongodump.)
func Backup(ctx context.Context, data, to string) (Copied, error) {
	if _, err := os.Stat(to); err == nil {
		return Copied{}, fmt.Errorf("%s exists already: a backup goes into a new directory", to)
	}
	if err := os.MkdirAll(filepath.Join(to, "keys"), 0o700); err != nil {
		return Copied{}, err
	}
	keys, err := copyKeys(data, to)
	if err != nil {
		return Copied{}, err
	}
	db := filepath.Join(to, DBFile)
	if err := sqlite.Backup(ctx, filepath.Join(data, DBFile), db); err != nil {
		return Copied{}, err
	}
	st, err := os.Stat(db)
	if err != nil {
		return Copied{}, err
	}
	return Copied{DB: db, Bytes: st.Size(), Keys: keys}, nil
}

// Restore puts a backup made by Backup into data. A store in use by a
// running server is refused (ErrDataInUse), and so is any store already
// there unless force, which keeps the old database aside as
// fieldsync.db.before-restore-<time>.
func Restore(ctx context.Context, from, data string, force bool) (Copied, error) {
	src := filepath.Join(from, DBFile)
	if _, err := os.Stat(src); err != nil {
		return Copied{}, fmt.Errorf("%s is not a backup: %w", from, err)
	}
	var out Copied
	db := filepath.Join(data, DBFile)
	if _, err := os.Stat(db); err == nil {
		// Opening takes the store's lock: a running server refuses it.
		st, err := sqlite.Open(ctx, db, sqlite.Options{})
		if engine.ErrorKind(err) == engine.KindUnavailable {
			return Copied{}, ErrDataInUse
		}
		if err != nil {
			return Copied{}, err
		}
		st.Close()
		if !force {
			return Copied{}, ErrDataHoldsStore
		}
		out.Aside = db + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(db, out.Aside); err != nil {
			return Copied{}, err
		}
	}
	// A write-ahead log of the old database must never be applied to the
	// restored one.
	for _, ext := range []string{"-wal", "-shm"} {
		if err := os.Remove(db + ext); err != nil && !os.IsNotExist(err) {
			return out, err
		}
	}
	if err := os.MkdirAll(filepath.Join(data, "keys"), 0o700); err != nil {
		return out, err
	}
	keys, err := copyKeys(from, data)
	if err != nil {
		return out, err
	}
	if err := copyFile(src, db+".partial"); err != nil {
		return out, err
	}
	if err := os.Rename(db+".partial", db); err != nil {
		return out, err
	}
	st, err := os.Stat(db)
	if err != nil {
		return out, err
	}
	out.DB, out.Bytes, out.Keys = db, st.Size(), keys
	return out, nil
}

// copyKeys copies the signing keys of one data directory to another; a key
// file of the same name is replaced (it is the same key, or the backup's).
func copyKeys(from, to string) (int, error) {
	names, err := filepath.Glob(filepath.Join(from, "keys", "*.pem"))
	if err != nil {
		return 0, err
	}
	for _, n := range names {
		if err := copyFile(n, filepath.Join(to, "keys", filepath.Base(n))); err != nil {
			return 0, err
		}
	}
	return len(names), nil
}

// copyFile copies a file with owner-only permissions and syncs it.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
