package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	engine "github.com/fieldsync/fieldsync/sync"
	"github.com/fieldsync/fieldsync/sync/storetest"
)

// openT opens the store at path and fails the test on error.
func openT(t *testing.T, path string, opt Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opt)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		path := filepath.Join(t.TempDir(), "fieldsync.db")
		cur := openT(t, path, Options{})
		t.Cleanup(func() {
			if err := cur.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return storetest.Harness{
			Store: cur,
			Reopen: func(t *testing.T) engine.Store {
				if err := cur.Close(); err != nil {
					t.Fatalf("Close before reopen: %v", err)
				}
				cur = openT(t, path, Options{})
				return cur
			},
		}
	})
}

// TestMigrationsOnce: every migration is recorded once, reopening applies
// nothing again, and a database newer than the binary is refused.
func TestMigrationsOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fieldsync.db")
	type applied struct {
		version int
		at      string
	}
	read := func(s *Store) []applied {
		t.Helper()
		rows, err := s.w.QueryContext(ctx, `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		defer rows.Close()
		var out []applied
		for rows.Next() {
			var a applied
			if err := rows.Scan(&a.version, &a.at); err != nil {
				t.Fatalf("scan: %v", err)
			}
			out = append(out, a)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("rows: %v", err)
		}
		return out
	}

	s := openT(t, path, Options{})
	first := read(s)
	if len(first) != len(migrations) {
		t.Fatalf("schema_migrations has %d rows, want %d", len(first), len(migrations))
	}
	for i, a := range first {
		if a.version != i+1 || a.at == "" {
			t.Errorf("migration row %d = %+v, want version %d with a time", i, a, i+1)
		}
	}
	// Data written before the reopen must still be there after it: a
	// migration that ran again would have failed or wiped it.
	secret, err := s.Secret(ctx, "migration-test", 16)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openT(t, path, Options{})
	if again := read(s); !slices.Equal(again, first) {
		t.Errorf("after reopen schema_migrations = %+v, want %+v unchanged", again, first)
	}
	if got, err := s.Secret(ctx, "migration-test", 16); err != nil || string(got) != string(secret) {
		t.Errorf("secret after reopen = %x, %v; want %x", got, err, secret)
	}

	// A database migrated by a newer binary is refused, not downgraded.
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, datetime('now'))`,
		len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(ctx, path, Options{}); err == nil {
		s.Close()
		t.Errorf("Open of a database at a newer schema version succeeded")
	}
}

// TestSingleProcess: a second Open of the same path fails while the first
// holds it, with an unavailable error; closing releases it.
func TestSingleProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fieldsync.db")
	s := openT(t, path, Options{})

	second, err := Open(ctx, path, Options{})
	if err == nil {
		second.Close()
		t.Fatalf("a second Open of %s succeeded while the first is open", path)
	}
	var e *engine.Error
	if !errors.As(err, &e) || e.Kind != engine.KindUnavailable {
		t.Errorf("second Open: error %v, want an *engine.Error of kind unavailable", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("the first store stopped working after the refused Open: %v", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s = openT(t, path, Options{})
	s.Close()
}

// TestSynchronous: the writer fsyncs every commit unless told otherwise.
func TestSynchronous(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		opt  string
		want int // SQLite's numbering: 1 NORMAL, 2 FULL
	}{{"", 2}, {"NORMAL", 1}} {
		s := openT(t, filepath.Join(t.TempDir(), "fieldsync.db"), Options{Synchronous: c.opt})
		var got int
		if err := s.w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got != c.want {
			t.Errorf("Synchronous %q: PRAGMA synchronous = %d, want %d", c.opt, got, c.want)
		}
	}
}
