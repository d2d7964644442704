package blob_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/attachment/blob"
)

func TestCheckKey(t *testing.T) {
	t.Parallel()
	for key, ok := range map[string]bool{
		"org-1/ab12.jpg": true, "a": true, "org_1/thumb/256-abc": true,
		"": false, "/a": false, "a/": false, "a//b": false, ".hidden": false, "a/../b": false,
		"a\\b": false, "a b": false, "ü": false, strings.Repeat("a", 129): false,
		strings.Repeat("a/", 256) + "a": false,
	} {
		if err := blob.CheckKey(key); (err == nil) != ok {
			t.Errorf("CheckKey(%q) = %v, want ok %v", key, err, ok)
		}
	}
	for prefix, ok := range map[string]bool{"": true, "org-1/": true, "org-1": true, "/": false, "../": false} {
		if err := blob.CheckPrefix(prefix); (err == nil) != ok {
			t.Errorf("CheckPrefix(%q) = %v, want ok %v", prefix, err, ok)
		}
	}
}

func TestExact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		data string
		size int64
		err  error
	}{
		{"exact", "hello", 5, nil},
		{"short", "hell", 5, blob.ErrSize},
		{"long", "hello!", 5, blob.ErrSize},
		{"empty", "", 0, nil},
	} {
		got, err := io.ReadAll(blob.Exact(strings.NewReader(tc.data), tc.size))
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
		}
		if tc.err == nil && !bytes.Equal(got, []byte(tc.data)) {
			t.Errorf("%s: read %q", tc.name, got)
		}
	}
}
