package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/jwtauth"
	"github.com/fieldsync/fieldsync/sqlite"
)

// TestBackupAndRestore copies a data directory (store and signing keys) and
// puts it back: a backup goes into a new directory only; a restore refuses a
// store in use and, without force, any store already there; with force the
// old database is kept aside and its write-ahead log is not applied to the
// restored one. (cmd/fieldsync's TestBackupWhileDevicesPush backs up a
// running server under load through the commands.)
func TestBackupAndRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(data, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := jwtauth.LoadOrCreate(data); err != nil {
		t.Fatal(err)
	}
	keys, _ := filepath.Glob(filepath.Join(data, "keys", "*.pem"))

	to := filepath.Join(t.TempDir(), "backup")
	c, err := Backup(ctx, data, to)
	if err != nil || c.Keys != len(keys) || c.Keys == 0 || c.Bytes == 0 || c.DB != filepath.Join(to, DBFile) {
		t.Fatalf("backup: %+v %v (%d keys)", c, err, len(keys))
	}
	if _, err := Backup(ctx, data, to); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("a backup into an existing directory: %v", err)
	}
	if _, err := Restore(ctx, t.TempDir(), t.TempDir(), false); err == nil || !strings.Contains(err.Error(), "is not a backup") {
		t.Errorf("a restore from a directory without a backup: %v", err)
	}

	into := t.TempDir()
	if c, err := Restore(ctx, to, into, false); err != nil || c.Keys != len(keys) || c.Aside != "" {
		t.Fatalf("restore into an empty directory: %+v %v", c, err)
	}
	if got, err := jwtauth.Load(into); err != nil || got == nil {
		t.Errorf("the restored keys: %v", err)
	}
	if _, err := Restore(ctx, to, into, false); !errors.Is(err, ErrDataHoldsStore) {
		t.Errorf("a restore over a store without force: %v", err)
	}

	held, err := sqlite.Open(ctx, filepath.Join(into, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, to, into, true); !errors.Is(err, ErrDataInUse) {
		t.Errorf("a restore over a store in use, with force: %v", err)
	}
	held.Close()

	wal := filepath.Join(into, DBFile+"-wal")
	if err := os.WriteFile(wal, []byte("not of this database"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Restore(ctx, to, into, true)
	if err != nil || c.Aside == "" || !strings.HasPrefix(filepath.Base(c.Aside), DBFile+".before-restore-") {
		t.Fatalf("restore with force: %+v %v", c, err)
	}
	if _, err := os.Stat(c.Aside); err != nil {
		t.Errorf("the replaced database was not kept aside: %v", err)
	}
	if _, err := os.Stat(wal); !os.IsNotExist(err) {
		t.Errorf("the old write-ahead log is still there: %v", err)
	}
	st, err = sqlite.Open(ctx, c.DB, sqlite.Options{})
	if err != nil {
		t.Fatalf("the restored store does not open: %v", err)
	}
	st.Close()
}
