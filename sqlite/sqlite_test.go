package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/fieldsync/fieldsync/sync/engine"
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
		rows, err := s.wtx.conn.QueryContext(ctx, `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
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
	if _, err := s.wtx.conn.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, datetime('now'))`,
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
		if err := s.wtx.conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got != c.want {
			t.Errorf("Synchronous %q: PRAGMA synchronous = %d, want %d", c.opt, got, c.want)
		}
	}
}

// TestWriterStatementJournalInMemory: the writer keeps its statement
// journals in memory (writerDriver); the setting belongs to the connection,
// so it is set by the driver whenever one is opened.
func TestWriterStatementJournalInMemory(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "fieldsync.db"), Options{})
	defer s.Close()
	var got int
	if err := s.wtx.conn.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != 2 { // SQLite's numbering: 0 default, 1 FILE, 2 MEMORY
		t.Errorf("PRAGMA temp_store = %d, want 2 (MEMORY)", got)
	}
}

// TestGroupCommitIsolatesBatches holds the writer busy so that two batches
// queue into one group commit, one of them failing (its context is
// cancelled after it was queued): the failing batch rolls back alone, the
// other commits, and the sequence stays gap-free for readers.
func TestGroupCommitIsolatesBatches(t *testing.T) {
	t.Parallel()
	s := openT(t, filepath.Join(t.TempDir(), "fieldsync.db"), Options{})
	t.Cleanup(func() { s.Close() })
	actor := engine.Actor{Org: "o", User: "u"}
	batch := func(id string) engine.PushBatch {
		return engine.PushBatch{Actor: actor, Device: "d", Mutations: []engine.Mutation{{ID: "m-" + id, Collection: "customer_notes", DocID: id, Op: engine.OpCreate}}}
	}
	decide := func(b engine.PushBatch) engine.Decide {
		return func(i int, cur *engine.Document) (*engine.Document, engine.Outcome) {
			m := b.Mutations[i]
			return &engine.Document{Org: "o", Collection: m.Collection, ID: m.DocID, Owner: "u", Version: 1,
					Body: []byte(`{"text":"x"}`), Scopes: []string{"user:u"}},
				engine.Outcome{MutationID: m.ID, Status: engine.StatusApplied, Version: 1}
		}
	}
	type result struct {
		id  string
		err error
	}
	results := make(chan result, 3)
	push := func(ctx context.Context, id string) {
		b := batch(id)
		_, err := s.Push(ctx, b, decide(b))
		results <- result{id, err}
	}

	s.wmu.Lock() // the writer will block in its first commit
	go push(context.Background(), "a")
	waitFor(t, func() bool { g, _ := s.GroupStats(); return g == 1 }) // the writer took a and waits for the lock
	ctxC, cancel := context.WithCancel(context.Background())
	go push(context.Background(), "b")
	go push(ctxC, "c")
	waitFor(t, func() bool { return len(s.queue) == 2 }) // b and c wait together
	cancel()
	s.wmu.Unlock()

	got := map[string]error{}
	for range 3 {
		r := <-results
		got[r.id] = r.err
	}
	if got["a"] != nil || got["b"] != nil {
		t.Fatalf("a and b must commit: %v", got)
	}
	if got["c"] == nil {
		t.Fatalf("c ran with a cancelled context and must fail")
	}
	pg, err := s.Pull(context.Background(), engine.PullQuery{Org: "o", Scopes: []string{"user:u"}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	changes := pg.Changes
	var ids []string
	for i, c := range changes {
		ids = append(ids, c.ID)
		if c.Seq != int64(i+1) {
			t.Errorf("change %s at seq %d, want %d: the failed batch left a hole or a duplicate", c.ID, c.Seq, i+1)
		}
	}
	if !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("stored %v, want [a b]", ids)
	}
	if g, b := s.GroupStats(); g != 2 || b != 3 {
		t.Fatalf("%d groups carried %d batches, want b and c committed together (2 groups, 3 batches)", g, b)
	}
}

// waitFor waits until cond holds, yielding to the goroutines it waits on.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 10_000_000 {
			t.Fatal("condition never held")
		}
		runtime.Gosched()
	}
}
