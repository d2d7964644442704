package disk_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldsync/fieldsync/attachment/blob"
	"github.com/fieldsync/fieldsync/attachment/blobtest"
	"github.com/fieldsync/fieldsync/attachment/disk"
)

func TestContract(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := disk.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// A Put a crash interrupted leaves a temporary file and no object; opening
// the store again removes the file.
func TestOpenRemovesInterruptedPuts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := disk.Open(dir); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, ".tmp", "put-123")
	if err := os.WriteFile(left, []byte("half a photo"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := disk.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatalf("leftover still there: %v", err)
	}
	if err := s.Put(context.Background(), "o/k", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	n := 0
	s.List(context.Background(), "", func(blob.Info) error { n++; return nil })
	if n != 1 {
		t.Fatalf("List shows %d objects, want 1", n)
	}
}
