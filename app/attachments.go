package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/attachment"
	"github.com/fieldsync/fieldsync/attachment/blob"
	"github.com/fieldsync/fieldsync/attachment/disk"
	"github.com/fieldsync/fieldsync/attachment/s3blob"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// AttachmentsConfig configures files on documents (docs/attachments.md).
type AttachmentsConfig struct {
	Dir                         string // default <data>/attachments
	S3Bucket, S3Prefix          string
	S3Endpoint, S3Region        string
	Limits                      attachment.Limits
	Retention, Abandoned, Sweep time.Duration
}

// orgLister lists organisations for the sweep (both stores implement it).
type orgLister interface {
	Orgs(ctx context.Context) ([]string, error)
}

// startAttachments opens the blob store and the service and starts the
// sweep; stop ends the sweep.
func startAttachments(ctx context.Context, f AttachmentsConfig, data string, eng *engine.Engine, store engine.Store, now func() time.Time, log *slog.Logger) (*attachment.Service, func(), error) {
	dir := f.Dir
	if dir == "" {
		dir = filepath.Join(data, "attachments")
	}
	var blobs blob.Store
	var err error
	if f.S3Bucket != "" {
		var s *s3blob.Store
		s, err = s3blob.Open(ctx, s3blob.Config{Bucket: f.S3Bucket, Prefix: f.S3Prefix, Endpoint: f.S3Endpoint, Region: f.S3Region,
			SpoolDir: filepath.Join(dir, "staging")})
		if err == nil {
			err = s.Ping(ctx)
		}
		blobs = s
	} else {
		blobs, err = disk.Open(filepath.Join(dir, "blobs"))
	}
	if err != nil {
		return nil, nil, err
	}
	svc, err := attachment.New(attachment.Config{Engine: eng, Docs: store, Blobs: blobs, Staging: filepath.Join(dir, "staging"),
		Limits: f.Limits, Retention: f.Retention, Abandoned: f.Abandoned, Now: now})
	if err != nil {
		return nil, nil, err
	}
	orgs, ok := store.(orgLister)
	if f.Sweep == 0 || !ok {
		return svc, func() {}, nil
	}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(f.Sweep)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
			ids, err := orgs.Orgs(sctx)
			if err == nil {
				var sw attachment.Swept
				sw, err = svc.Sweep(sctx, ids)
				log.Info("attachment sweep", "orphaned", sw.Orphaned, "purged", sw.Purged, "abandoned", sw.Abandoned)
			}
			if err != nil && sctx.Err() == nil {
				log.Warn("attachment sweep failed", "err", err)
			}
		}
	})
	return svc, func() { cancel(); wg.Wait() }, nil
}
