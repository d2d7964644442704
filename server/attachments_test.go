package server

import "testing"

func TestByteRange(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		h           string
		size        int64
		off, n      int64
		partial, ok bool
	}{
		{"", 100, 0, 100, false, true},
		{"bytes=0-9", 100, 0, 10, true, true},
		{"bytes=90-", 100, 90, 10, true, true},
		{"bytes=90-200", 100, 90, 10, true, true},
		{"bytes=-10", 100, 90, 10, true, true},
		{"bytes=-500", 100, 0, 100, true, true},
		{"bytes=100-", 100, 0, 0, false, false},
		{"bytes=5-2", 100, 0, 100, false, true},     // invalid: ignored
		{"bytes=0-1,5-6", 100, 0, 100, false, true}, // several: the whole file
		{"items=0-1", 100, 0, 100, false, true},
		{"bytes=x-", 100, 0, 100, false, true},
	} {
		off, n, partial, ok := byteRange(c.h, c.size)
		if off != c.off || n != c.n || partial != c.partial || ok != c.ok {
			t.Errorf("byteRange(%q, %d) = %d, %d, %v, %v; want %d, %d, %v, %v", c.h, c.size, off, n, partial, ok, c.off, c.n, c.partial, c.ok)
		}
	}
}
