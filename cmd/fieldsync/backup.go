package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

const backupUsage = `usage: fieldsync backup --to DIR [--data DIR]

Copies the embedded store of --data and its signing keys into DIR (which must
not exist yet), consistently, while the server keeps running: the copy holds
every push acknowledged before it began. MongoDB deployments back up with
mongodump instead (docs/operations.md, "Backup and restore").
`

const restoreUsage = `usage: fieldsync restore --from DIR [--data DIR] [--force]

Puts a backup made by "fieldsync backup" into --data. Stop the server first.
A data directory that already holds a store is refused unless --force, which
keeps the old database aside as fieldsync.db.before-restore-<time>.
`

// dbName is the embedded store's file inside the data directory.
const dbName = "fieldsync.db"

func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	describe(fs, stderr, backupUsage)
	data := fs.String("data", "./data", "data directory of the store to copy (env FIELDSYNC_DATA)")
	to := fs.String("to", "", "new directory for the backup (required)")
	mongoURI := fs.String("mongodb-uri", "", "refused: a MongoDB store is backed up with mongodump (env FIELDSYNC_MONGODB_URI)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *mongoURI != "" {
		return usageError("the store is MongoDB: back it up with mongodump (docs/operations.md, \"Backup and restore\")")
	}
	if *to == "" || fs.NArg() > 0 {
		return usageError("backup needs --to DIR and no arguments")
	}
	if _, err := os.Stat(*to); err == nil {
		return fmt.Errorf("%s exists already: a backup goes into a new directory", *to)
	}
	start := time.Now()
	if err := os.MkdirAll(filepath.Join(*to, "keys"), 0o700); err != nil {
		return err
	}
	keys, err := copyKeys(*data, *to)
	if err != nil {
		return err
	}
	if err := sqlite.Backup(ctx, filepath.Join(*data, dbName), filepath.Join(*to, dbName)); err != nil {
		return err
	}
	st, err := os.Stat(filepath.Join(*to, dbName))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s (%d bytes) and %d signing keys to %s in %s\n", filepath.Join(*data, dbName), st.Size(),
		keys, *to, time.Since(start).Round(time.Millisecond))
	return nil
}

func restoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	describe(fs, stderr, restoreUsage)
	data := fs.String("data", "./data", "data directory to restore into (env FIELDSYNC_DATA)")
	from := fs.String("from", "", "a directory written by fieldsync backup (required)")
	force := fs.Bool("force", false, "replace a store that is there, keeping the old database aside")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || fs.NArg() > 0 {
		return usageError("restore needs --from DIR and no arguments")
	}
	src := filepath.Join(*from, dbName)
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("%s is not a backup: %w", *from, err)
	}
	db := filepath.Join(*data, dbName)
	if _, err := os.Stat(db); err == nil {
		// Opening takes the store's lock: a running server refuses it.
		st, err := sqlite.Open(ctx, db, sqlite.Options{})
		if engine.ErrorKind(err) == engine.KindUnavailable {
			return fmt.Errorf("%s is in use: stop the server before restoring", *data)
		}
		if err != nil {
			return err
		}
		st.Close()
		if !*force {
			return fmt.Errorf("%s already holds a store: pass --force to replace it (it is kept aside)", *data)
		}
		aside := db + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(db, aside); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "kept the old database as %s\n", aside)
	}
	// A write-ahead log of the old database must never be applied to the
	// restored one.
	for _, ext := range []string{"-wal", "-shm"} {
		if err := os.Remove(db + ext); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(*data, "keys"), 0o700); err != nil {
		return err
	}
	keys, err := copyKeys(*from, *data)
	if err != nil {
		return err
	}
	if err := copyFile(src, db+".partial"); err != nil {
		return err
	}
	if err := os.Rename(db+".partial", db); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s and %d signing keys into %s\n", src, keys, *data)
	return nil
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
