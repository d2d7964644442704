package s3blob_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/fieldsync/fieldsync/attachment/blob"
	"github.com/fieldsync/fieldsync/attachment/blobtest"
	"github.com/fieldsync/fieldsync/attachment/s3blob"
)

// StartS3 starts an S3-compatible server (gofakes3, in memory) and returns
// a store on a fresh bucket of it.
func startS3(t *testing.T) func(t *testing.T) blob.Store {
	t.Helper()
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	var n atomic.Int64
	return func(t *testing.T) blob.Store {
		bucket := fmt.Sprintf("bucket-%d", n.Add(1))
		if err := backend.CreateBucket(bucket); err != nil {
			t.Fatal(err)
		}
		s, err := s3blob.Open(context.Background(), s3blob.Config{Bucket: bucket, Prefix: "fs/", Endpoint: srv.URL, SpoolDir: t.TempDir()},
			func(o *s3.Options) { o.HTTPClient = srv.Client() })
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestContract(t *testing.T) {
	open := startS3(t)
	blobtest.Run(t, open)
}
