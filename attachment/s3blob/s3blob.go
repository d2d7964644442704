// Package s3blob is the production blob store: objects in a bucket of an
// S3-compatible object store (AWS S3, MinIO, Ceph RGW) through the AWS SDK
// for Go v2. A PutObject is atomic on every such store, so a reader sees a
// whole object or none. It implements attachment/blob.Store and passes
// attachment/blobtest against an S3-compatible server started in the test.
package s3blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/fieldsync/fieldsync/attachment/blob"
)

// Config names the bucket. Credentials and region come from the SDK's
// default chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
// shared config, instance roles) unless set here.
type Config struct {
	Bucket string
	// Prefix is prepended to every key ("fieldsync/"), so one bucket can
	// serve several deployments.
	Prefix string
	// Endpoint is a non-AWS store's URL (MinIO, Ceph); addressing is then
	// path-style.
	Endpoint string
	Region   string
	// SpoolDir holds a Put's bytes when its reader cannot seek (the SDK
	// signs a payload it can read twice); "" is the system's temp dir.
	SpoolDir string
}

// Store is a bucket.
type Store struct {
	c      *s3.Client
	bucket string
	prefix string
	spool  string
}

var _ blob.Store = (*Store)(nil)

// Open returns the store of cfg, with the SDK's default credential chain.
func Open(ctx context.Context, cfg Config, opts ...func(*s3.Options)) (*Store, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3blob: no bucket")
	}
	var load []func(*config.LoadOptions) error
	if cfg.Region != "" {
		load = append(load, config.WithRegion(cfg.Region))
	}
	ac, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("s3blob: %w", err)
	}
	opts = append([]func(*s3.Options){func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
		// Checksums only where the API requires them: several
		// S3-compatible stores do not accept the trailing checksums the SDK
		// sends by default, and the attachment service checks SHA-256 itself.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}}, opts...)
	return &Store{c: s3.NewFromConfig(ac, opts...), bucket: cfg.Bucket, prefix: cfg.Prefix, spool: cfg.SpoolDir}, nil
}

// Ping checks that the bucket exists and the credentials reach it.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	if err != nil {
		return fmt.Errorf("s3blob: bucket %s: %w", s.bucket, err)
	}
	return nil
}

func (s *Store) key(k string) (*string, error) {
	if err := blob.CheckKey(k); err != nil {
		return nil, err
	}
	return aws.String(s.prefix + k), nil
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	body, done, err := s.seekable(r, size)
	if err != nil {
		return fmt.Errorf("s3blob: put %s: %w", key, err)
	}
	defer done()
	_, err = s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: k, Body: body, ContentLength: aws.Int64(size)})
	if err != nil {
		return fmt.Errorf("s3blob: put %s: %w", key, err)
	}
	return nil
}

// seekable returns exactly size bytes of r as a seekable body: a section of
// r when r seeks and holds size bytes from where it stands (the attachment
// service's staged file), otherwise a spooled copy, so memory stays bounded
// whatever the size.
func (s *Store) seekable(r io.Reader, size int64) (io.ReadSeeker, func(), error) {
	if f, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	}); ok {
		cur, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, nil, err
		}
		end, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, nil, err
		}
		if end-cur != size {
			return nil, nil, blob.ErrSize
		}
		return io.NewSectionReader(f, cur, size), func() {}, nil
	}
	tmp, err := os.CreateTemp(s.spool, "s3blob-*")
	if err != nil {
		return nil, nil, err
	}
	done := func() { tmp.Close(); os.Remove(tmp.Name()) }
	if _, err := io.Copy(tmp, blob.Exact(r, size)); err != nil {
		done()
		return nil, nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		done()
		return nil, nil, err
	}
	return tmp, done, nil
}

// Get implements blob.Store. A ranged read asks for the size first, so an
// empty range or an offset at the end never reaches the store as a request
// S3 refuses (416).
func (s *Store) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, err
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: k}
	if offset != 0 || length >= 0 {
		info, err := s.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if offset < 0 || offset > info.Size {
			return nil, fmt.Errorf("s3blob: offset %d outside %s (%d bytes)", offset, key, info.Size)
		}
		if length < 0 || offset+length > info.Size {
			length = info.Size - offset
		}
		if length == 0 {
			return io.NopCloser(strings.NewReader("")), nil
		}
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	}
	out, err := s.c.GetObject(ctx, in)
	if err != nil {
		return nil, s.translate(key, err)
	}
	return out.Body, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	k, err := s.key(key)
	if err != nil {
		return blob.Info{}, err
	}
	out, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: k})
	if err != nil {
		return blob.Info{}, s.translate(key, err)
	}
	return blob.Info{Key: key, Size: aws.ToInt64(out.ContentLength), Modified: aws.ToTime(out.LastModified)}, nil
}

// translate turns the store's "no such key" into blob.ErrNotFound, by type
// or by the API's error code (HEAD answers carry no body, so only a code).
func (s *Store) translate(key string, err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var api smithy.APIError
	if errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &api) && (api.ErrorCode() == "NotFound" || api.ErrorCode() == "NoSuchKey") {
		return blob.ErrNotFound
	}
	return fmt.Errorf("s3blob: %s: %w", key, err)
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if _, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: k}); err != nil {
		if err := s.translate(key, err); !errors.Is(err, blob.ErrNotFound) {
			return err
		}
	}
	return nil
}

// List implements blob.Store; S3 lists keys in ascending byte order.
func (s *Store) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	if err := blob.CheckPrefix(prefix); err != nil {
		return err
	}
	p := s3.NewListObjectsV2Paginator(s.c, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix + prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3blob: list %q: %w", prefix, err)
		}
		for _, o := range page.Contents {
			info := blob.Info{Key: strings.TrimPrefix(aws.ToString(o.Key), s.prefix), Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}
