package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/fieldsync/fieldsync/app"
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
	start := time.Now()
	c, err := app.Backup(ctx, *data, *to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s (%d bytes) and %d signing keys to %s in %s\n", filepath.Join(*data, app.DBFile), c.Bytes,
		c.Keys, *to, time.Since(start).Round(time.Millisecond))
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
	c, err := app.Restore(ctx, *from, *data, *force)
	if c.Aside != "" {
		fmt.Fprintf(stdout, "kept the old database as %s\n", c.Aside)
	}
	switch {
	case errors.Is(err, app.ErrDataInUse):
		return fmt.Errorf("%s is in use: stop the server before restoring", *data)
	case errors.Is(err, app.ErrDataHoldsStore):
		return fmt.Errorf("%s already holds a store: pass --force to replace it (it is kept aside)", *data)
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "restored %s and %d signing keys into %s\n", filepath.Join(*from, app.DBFile), c.Keys, *data)
	return nil
}
