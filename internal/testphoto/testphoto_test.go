package testphoto

import (
	"bytes"
	"image/jpeg"
	"testing"
)

// TestJPEG: a decodable JPEG of at least the size asked for, the same bytes
// for the same seed, other bytes for another.
func TestJPEG(t *testing.T) {
	t.Parallel()
	a := JPEG(1, 20<<10)
	if len(a) < 20<<10 {
		t.Fatalf("%d bytes, want at least %d", len(a), 20<<10)
	}
	if _, err := jpeg.Decode(bytes.NewReader(a)); err != nil {
		t.Fatalf("not a JPEG: %v", err)
	}
	if !bytes.Equal(a, JPEG(1, 20<<10)) || bytes.Equal(a, JPEG(2, 20<<10)) {
		t.Error("the bytes do not follow the seed")
	}
}
