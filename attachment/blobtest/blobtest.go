// Package blobtest is the contract suite every blob.Store passes (the
// local-disk store, the S3-compatible store). It exercises a store through
// the interface only.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/fieldsync/fieldsync/attachment/blob"
)

// Run runs the suite. open returns an empty store for one subtest (each
// subtest may also share one store under a distinct prefix).
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"PutGet", putGet},
		{"Ranges", ranges},
		{"Missing", missing},
		{"Overwrite", overwrite},
		{"ShortReaderLeavesNothing", shortReader},
		{"LongReaderLeavesNothing", longReader},
		{"FailingReaderKeepsOld", failingReader},
		{"CancelledLeavesNothing", cancelled},
		{"DeleteIdempotent", deleteIdempotent},
		{"List", list},
		{"BadKeys", badKeys},
		{"ConcurrentPuts", concurrentPuts},
		{"Large", large},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, open(t))
		})
	}
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func put(t *testing.T, s blob.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("Put %s: %v", key, err)
	}
}

func get(t *testing.T, s blob.Store, key string, off, n int64) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key, off, n)
	if err != nil {
		t.Fatalf("Get %s [%d,%d]: %v", key, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

// absent asserts that key holds nothing, by every read method.
func absent(t *testing.T, s blob.Store, key string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat %s: err %v, want ErrNotFound", key, err)
	}
	if rc, err := s.Get(ctx, key, 0, -1); !errors.Is(err, blob.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("Get %s: err %v, want ErrNotFound", key, err)
	}
	err := s.List(ctx, "", func(i blob.Info) error {
		if i.Key == key {
			return fmt.Errorf("List shows %s (%d bytes)", key, i.Size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func putGet(t *testing.T, s blob.Store) {
	b := random(t, 70_000)
	put(t, s, "org1/abc", b)
	if got := get(t, s, "org1/abc", 0, -1); !bytes.Equal(got, b) {
		t.Fatalf("Get returned %d bytes differing from the %d put", len(got), len(b))
	}
	info, err := s.Stat(context.Background(), "org1/abc")
	if err != nil || info.Size != int64(len(b)) || info.Key != "org1/abc" || info.Modified.IsZero() {
		t.Fatalf("Stat = %+v, %v; want key org1/abc, size %d, a time", info, err, len(b))
	}
	put(t, s, "org1/empty", nil)
	if got := get(t, s, "org1/empty", 0, -1); len(got) != 0 {
		t.Fatalf("empty object read back %d bytes", len(got))
	}
}

func ranges(t *testing.T, s blob.Store) {
	b := random(t, 1000)
	put(t, s, "r/obj", b)
	for _, c := range []struct{ off, n, want0, want1 int64 }{
		{0, 10, 0, 10}, {990, 10, 990, 1000}, {990, 100, 990, 1000}, {500, -1, 500, 1000}, {1000, -1, 1000, 1000}, {3, 0, 3, 3},
	} {
		if got := get(t, s, "r/obj", c.off, c.n); !bytes.Equal(got, b[c.want0:c.want1]) {
			t.Errorf("Get(%d, %d) = %d bytes, want bytes [%d,%d)", c.off, c.n, len(got), c.want0, c.want1)
		}
	}
	if rc, err := s.Get(context.Background(), "r/obj", 1001, -1); err == nil {
		rc.Close()
		t.Error("Get past the end: no error")
	}
}

func missing(t *testing.T, s blob.Store) {
	absent(t, s, "nobody/here")
}

func overwrite(t *testing.T, s blob.Store) {
	put(t, s, "o/k", []byte("first version"))
	put(t, s, "o/k", []byte("second"))
	if got := get(t, s, "o/k", 0, -1); string(got) != "second" {
		t.Fatalf("after overwrite read %q", got)
	}
}

func shortReader(t *testing.T, s blob.Store) {
	err := s.Put(context.Background(), "p/short", bytes.NewReader(make([]byte, 10)), 11)
	if err == nil {
		t.Fatal("Put of 10 bytes declared 11: no error")
	}
	absent(t, s, "p/short")
}

func longReader(t *testing.T, s blob.Store) {
	err := s.Put(context.Background(), "p/long", bytes.NewReader(make([]byte, 12)), 11)
	if err == nil {
		t.Fatal("Put of 12 bytes declared 11: no error")
	}
	absent(t, s, "p/long")
}

func failingReader(t *testing.T, s blob.Store) {
	put(t, s, "p/keep", []byte("old"))
	bad := io.MultiReader(bytes.NewReader(make([]byte, 5000)), iotest.ErrReader(errors.New("connection reset")))
	if err := s.Put(context.Background(), "p/keep", bad, 10000); err == nil {
		t.Fatal("Put from a failing reader: no error")
	}
	if got := get(t, s, "p/keep", 0, -1); string(got) != "old" {
		t.Fatalf("failed Put changed the object to %d bytes", len(got))
	}
	if err := s.Put(context.Background(), "p/new", iotest.ErrReader(errors.New("boom")), 3); err == nil {
		t.Fatal("Put from a failing reader: no error")
	}
	absent(t, s, "p/new")
}

func cancelled(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, "c/x", bytes.NewReader(make([]byte, 100)), 100); err == nil {
		t.Fatal("Put with a cancelled context: no error")
	}
	absent(t, s, "c/x")
}

func deleteIdempotent(t *testing.T, s blob.Store) {
	ctx := context.Background()
	put(t, s, "d/x", []byte("x"))
	for range 2 {
		if err := s.Delete(ctx, "d/x"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	}
	absent(t, s, "d/x")
}

func list(t *testing.T, s blob.Store) {
	keys := []string{"l1/b", "l1/a", "l1/sub/c", "l2/a", "l10/z"}
	for _, k := range keys {
		put(t, s, k, []byte(k))
	}
	collect := func(prefix string) []string {
		var got []string
		err := s.List(context.Background(), prefix, func(i blob.Info) error {
			if i.Size != int64(len(i.Key)) {
				t.Errorf("List: %s has size %d, want %d", i.Key, i.Size, len(i.Key))
			}
			got = append(got, i.Key)
			return nil
		})
		if err != nil {
			t.Fatalf("List %q: %v", prefix, err)
		}
		return got
	}
	if got, want := strings.Join(collect("l1/"), " "), "l1/a l1/b l1/sub/c"; got != want {
		t.Errorf("List l1/ = %s, want %s", got, want)
	}
	if got, want := strings.Join(collect("l1/s"), " "), "l1/sub/c"; got != want {
		t.Errorf("List l1/s = %s, want %s", got, want)
	}
	if got := collect("none/"); len(got) != 0 {
		t.Errorf("List none/ = %v", got)
	}
	stop := errors.New("stop")
	n := 0
	err := s.List(context.Background(), "l1/", func(blob.Info) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("List stopped by fn: err %v after %d calls, want stop after 1", err, n)
	}
}

func badKeys(t *testing.T, s blob.Store) {
	ctx := context.Background()
	for _, k := range []string{"", "../x", "a/../../x", "/abs", "a//b", ".hidden", "a/.tmp/x", "a\\b", "é", "a b", strings.Repeat("a", blob.MaxKey+1)} {
		if err := s.Put(ctx, k, bytes.NewReader([]byte("x")), 1); err == nil {
			t.Errorf("Put %q: no error", k)
		}
		if _, err := s.Stat(ctx, k); err == nil || errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Stat %q: err %v, want a bad-key error", k, err)
		}
	}
}

func concurrentPuts(t *testing.T, s blob.Store) {
	const n = 8
	vals := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		vals[i] = bytes.Repeat([]byte{byte('a' + i)}, 50_000+i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Put(context.Background(), "cc/k", bytes.NewReader(vals[i]), int64(len(vals[i]))); err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	got := get(t, s, "cc/k", 0, -1)
	for _, v := range vals {
		if bytes.Equal(got, v) {
			return
		}
	}
	t.Fatalf("after concurrent Puts the object (%d bytes) is none of the values put", len(got))
}

func large(t *testing.T, s blob.Store) {
	b := random(t, 6<<20+123) // past S3's 5 MiB part size
	put(t, s, "big/x", b)
	if got := get(t, s, "big/x", 0, -1); !bytes.Equal(got, b) {
		t.Fatalf("large object read back differs (%d bytes)", len(got))
	}
	if got := get(t, s, "big/x", 5<<20, 10); !bytes.Equal(got, b[5<<20:5<<20+10]) {
		t.Fatal("range of a large object differs")
	}
}
