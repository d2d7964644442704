// Package sqlite is the embedded fieldsync store: one SQLite file in WAL mode
// with a single writer connection and a pool of readers. It implements
// sync.Store and must not know about HTTP or any other adapter.
//
// Why single writer: SQLite serialises writers anyway; doing it in Go keeps
// the commit sequence (seq) gap-free and in commit order, which is what makes
// the pull feed airtight without any "skipped sequence" bookkeeping.
package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/fieldsync/fieldsync/sync/engine"
)

var _ engine.Store = (*Store)(nil)

// writerDriver opens the writer's connection. Its statement journals (the
// undo log SQLite keeps so that one failing multi-row INSERT rolls back
// alone inside a transaction) live in memory: on disk they were a temporary
// file written page by page, half of all the write syscalls of a push of 100
// notes (strace: ~300 pwrites per commit, 150 of them to that file), and
// they protect nothing once the process is gone, since the transaction
// around them is not committed either. docs/benchmarks.md has the figures.
const writerDriver = "sqlite3-fieldsync-writer"

func init() {
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec("PRAGMA temp_store = MEMORY", nil)
		return err
	}})
}

// Store is the SQLite implementation of sync.Store.
type Store struct {
	path string
	w    *sql.DB // exactly one connection: every write goes through it
	r    *sql.DB // readers, WAL lets them run beside the writer
	lock *os.File

	wmu sync.Mutex // serialises writes; guards seq and wtx
	seq int64      // last committed sequence
	// committed is seq once committed, for readers (pull.go).
	committed atomic.Int64
	// floor is the announced history floor (retention.go): a pull from
	// below it is told to start over.
	floor atomic.Int64
	now   func() time.Time
	wtx   *writerConn // the one writer connection

	queue      chan *pushReq // pushes waiting for the writer goroutine
	quit       chan struct{}
	writerDone chan struct{}
	closeMu    sync.RWMutex
	closed     bool
	groups     atomic.Int64 // group commits started
	grouped    atomic.Int64 // push batches in them

	pullStmt *sql.Stmt                        // the hottest read, prepared once
	userStmt *sql.Stmt                        // the directory's read on every authenticated request (identity.go)
	onCommit atomic.Pointer[func(org string)] // stream.go
}

// Options tune the store; the zero value is the production setting.
type Options struct {
	// Synchronous is SQLite's synchronous pragma for the writer. FULL (the
	// default) fsyncs the WAL on every commit, so an acknowledged push
	// survives power loss, not only a process crash; NORMAL would lose the
	// last commits on power loss, which breaks "nothing acknowledged is ever
	// lost". One commit carries a whole batch, so the fsync is amortised.
	Synchronous string
	// ReadConns bounds the reader pool (default 4).
	ReadConns int
	// Now is the clock of recorded outcomes (default time.Now): a
	// benchmark of a year of edits runs in minutes.
	Now func() time.Time
}

// Open opens (creating if needed) the store in the SQLite file at path and
// applies pending migrations. Only one process may hold a store open: a
// second Open of the same path fails instead of corrupting the sequence.
func Open(ctx context.Context, path string, opt Options) (*Store, error) {
	if opt.Synchronous == "" {
		opt.Synchronous = "FULL"
	}
	if opt.ReadConns <= 0 {
		opt.ReadConns = 4
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create data directory: %w", err)
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Store{path: path, lock: lock, now: opt.Now}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "5000")
	q.Set("_synchronous", opt.Synchronous)
	q.Set("_txlock", "immediate")
	s.w, err = sql.Open(writerDriver, "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open writer: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	if err := migrate(ctx, s.w); err != nil {
		return nil, err
	}
	rq := url.Values{}
	rq.Set("_busy_timeout", "5000")
	rq.Set("_query_only", "1")
	s.r, err = sql.Open("sqlite3", "file:"+path+"?"+rq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open readers: %w", err)
	}
	s.r.SetMaxOpenConns(opt.ReadConns)
	s.r.SetMaxIdleConns(opt.ReadConns)
	if err := s.w.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'seq'`).Scan(&s.seq); err != nil {
		return nil, fmt.Errorf("sqlite: read sequence: %w", err)
	}
	s.committed.Store(s.seq)
	var floor int64
	if err := s.w.QueryRowContext(ctx, `SELECT floor FROM history WHERE id = 1`).Scan(&floor); err != nil {
		return nil, fmt.Errorf("sqlite: read history floor: %w", err)
	}
	s.floor.Store(floor)
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: writer connection: %w", err)
	}
	s.wtx = &writerConn{conn: conn, stmts: map[string]*sql.Stmt{}}
	if s.pullStmt, err = s.r.PrepareContext(ctx, pullSQL); err != nil {
		return nil, fmt.Errorf("sqlite: prepare pull: %w", err)
	}
	if s.userStmt, err = s.r.PrepareContext(ctx, userSQL); err != nil {
		return nil, fmt.Errorf("sqlite: prepare user: %w", err)
	}
	s.queue = make(chan *pushReq, maxGroup)
	s.quit = make(chan struct{})
	s.writerDone = make(chan struct{})
	go s.writer()
	ok = true
	return s, nil
}

// lockFile takes an exclusive advisory lock that the kernel releases when
// the process dies, so a crash never leaves a stale lock behind.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, &engine.Error{Kind: engine.KindUnavailable, Code: engine.CodeUnavailable,
			Message: "the data directory is in use by another fieldsync process", Err: err}
	}
	return f, nil
}

// Close closes the database; it is safe to call more than once.
func (s *Store) Close() error {
	var errs []error
	s.closeMu.Lock()
	wasClosed := s.closed
	s.closed = true
	s.closeMu.Unlock()
	if wasClosed {
		return nil
	}
	if s.writerDone != nil {
		close(s.quit)
		<-s.writerDone
	}
	for _, st := range []**sql.Stmt{&s.pullStmt, &s.userStmt} {
		if *st != nil {
			errs = append(errs, (*st).Close())
			*st = nil
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
		s.r = nil
	}
	if s.wtx != nil {
		errs = append(errs, s.wtx.close())
		s.wtx = nil
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
		s.w = nil
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
		s.lock = nil
	}
	return errors.Join(errs...)
}

// Ping checks that a reader can run a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1 FROM meta LIMIT 1`).Scan(&one); err != nil {
		return translate(err)
	}
	return nil
}

// Secret implements sync.Store.
func (s *Store) Secret(ctx context.Context, name string, n int) ([]byte, error) {
	key := "secret:" + name
	var v []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, translate(err)
	}
	fresh := make([]byte, n)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.wtx.conn.ExecContext(ctx, `INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)`, key, fresh); err != nil {
		return nil, translate(err)
	}
	if err := s.wtx.conn.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v); err != nil {
		return nil, translate(err)
	}
	return v, nil
}

// write runs fn as one transaction on the writer connection and commits it.
// It is for small writes outside the sync feed (the identity directory): it
// takes the lock the push group commits take, so the connection stays the
// only writer and group commits keep their shape (pushes and these writes
// take turns at the lock), and it takes no sequence number, so the feed's
// commit order is untouched. fn's error rolls the transaction back and is
// returned as it is.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, tx *writerConn) error) error {
	// Held to the end, so Close cannot take the connection away meanwhile.
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return errClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx := s.wtx
	if _, err := tx.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return translate(err)
	}
	// Ending the transaction must not depend on the caller's context.
	end := context.WithoutCancel(ctx)
	if err := fn(ctx, tx); err != nil {
		tx.conn.ExecContext(end, "ROLLBACK")
		return err
	}
	if _, err := tx.conn.ExecContext(end, "COMMIT"); err != nil {
		tx.conn.ExecContext(end, "ROLLBACK") // a failed COMMIT can leave the transaction open
		return translate(err)
	}
	return nil
}

// translate maps driver errors to the engine's kinds.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return engine.Wrap(err, engine.KindUnavailable, engine.CodeUnavailable, "the store did not answer in time")
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrCantOpen, sqlite3.ErrIoErr, sqlite3.ErrFull:
			return engine.Wrap(err, engine.KindUnavailable, engine.CodeUnavailable, "the store is unavailable")
		case sqlite3.ErrConstraint:
			return engine.Wrap(err, engine.KindConflict, engine.CodeAlreadyExists, "constraint violated")
		}
	}
	return err
}
