// Package blob declares where attachment bytes are kept: a Store of whole,
// immutable objects under string keys. The attachment service uses it; the
// local-disk store (attachment/disk) and the S3-compatible store
// (attachment/s3blob) implement it and pass the contract suite in
// attachment/blobtest. It imports only the standard library.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrNotFound is returned for a key that holds no object.
var ErrNotFound = errors.New("blob: not found")

// Store keeps objects. Every method is safe for concurrent use. A key is
// never also a directory of other keys ("a" beside "a/b"): a file system
// cannot hold both.
type Store interface {
	// Put stores exactly size bytes read from r under key, replacing any
	// object there. Readers see the old object or the whole new one, never a
	// part: a reader that ends early, fails or holds more than size bytes
	// leaves the key as it was and Put returns an error. It returns once the
	// object is durable.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get returns length bytes of the object from offset (length < 0: to
	// its end). ErrNotFound when the key holds nothing; an offset past the
	// end is an error.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Stat describes the object; ErrNotFound when the key holds nothing.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in
	// ascending key order; an error from fn stops it and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
}

// Info describes a stored object.
type Info struct {
	Key      string
	Size     int64
	Modified time.Time
}

// MaxKey is the longest key a store accepts.
const MaxKey = 512

// CheckKey refuses keys that could name something outside a store's
// namespace on some backend: segments are separated by "/", each 1-128
// characters of A-Z a-z 0-9 . _ - and not starting with a dot. Stores call it
// on every key.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKey {
		return fmt.Errorf("blob: key must be 1-%d characters", MaxKey)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || len(seg) > 128 || seg[0] == '.' {
			return fmt.Errorf("blob: bad key %q: empty, long or dot segment", key)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return fmt.Errorf("blob: bad key %q: character %q", key, r)
			}
		}
	}
	return nil
}

// CheckPrefix is CheckKey for a List prefix, which may be empty or end in
// "/".
func CheckPrefix(prefix string) error {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		if prefix == "/" {
			return fmt.Errorf("blob: bad prefix %q", prefix)
		}
		return nil
	}
	return CheckKey(p)
}

// Exact reads exactly size bytes from r and then insists on its end: a
// store's Put copies through it so a short or long reader fails the Put.
func Exact(r io.Reader, size int64) io.Reader { return &exact{r: r, left: size} }

type exact struct {
	r    io.Reader
	left int64
}

// ErrSize is returned by a reader from Exact that ended early or went on
// past its size.
var ErrSize = errors.New("blob: reader size differs from the declared size")

func (e *exact) Read(p []byte) (int, error) {
	if e.left == 0 {
		var one [1]byte
		n, err := e.r.Read(one[:])
		if n > 0 {
			return 0, ErrSize
		}
		if err == nil {
			// A reader may return 0, nil: ask again rather than spin.
			n, err = io.ReadFull(e.r, one[:])
			if n > 0 {
				return 0, ErrSize
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, ErrSize
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}
