package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/attachment"
	"github.com/fieldsync/fieldsync/attachment/blob"
	"github.com/fieldsync/fieldsync/attachment/disk"
	"github.com/fieldsync/fieldsync/attachment/s3blob"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// attachmentFlags configure files on documents (docs/attachments.md).
type attachmentFlags struct {
	Dir                         string
	S3Bucket, S3Prefix          string
	S3Endpoint, S3Region        string
	Limits                      attachment.Limits
	Types                       string
	Retention, Abandoned, Sweep time.Duration
}

func (f *attachmentFlags) register(fs *flag.FlagSet) {
	d := attachment.DefaultLimits
	fs.StringVar(&f.Dir, "attachments-dir", "", "directory of attachment uploads in progress, and of the files themselves without --attachments-s3-bucket; default <data>/attachments (env FIELDSYNC_ATTACHMENTS_DIR)")
	fs.StringVar(&f.S3Bucket, "attachments-s3-bucket", "", "keep attachment files in this bucket of an S3-compatible store instead of the data directory; credentials from the AWS SDK's chain (env FIELDSYNC_ATTACHMENTS_S3_BUCKET)")
	fs.StringVar(&f.S3Prefix, "attachments-s3-prefix", "", "key prefix inside the bucket (env FIELDSYNC_ATTACHMENTS_S3_PREFIX)")
	fs.StringVar(&f.S3Endpoint, "attachments-s3-endpoint", "", "URL of a non-AWS S3-compatible store (MinIO, Ceph); path-style addressing (env FIELDSYNC_ATTACHMENTS_S3_ENDPOINT)")
	fs.StringVar(&f.S3Region, "attachments-s3-region", "", "the bucket's region; default from the AWS SDK's chain (env FIELDSYNC_ATTACHMENTS_S3_REGION)")
	fs.Int64Var(&f.Limits.MaxFileBytes, "attachment-max-file", d.MaxFileBytes, "largest attachment file in bytes (env FIELDSYNC_ATTACHMENT_MAX_FILE)")
	fs.IntVar(&f.Limits.MaxPerDocument, "attachment-max-per-doc", d.MaxPerDocument, "most files on one document (env FIELDSYNC_ATTACHMENT_MAX_PER_DOC)")
	fs.Int64Var(&f.Limits.MaxDocumentBytes, "attachment-max-doc-bytes", d.MaxDocumentBytes, "most bytes of files on one document (env FIELDSYNC_ATTACHMENT_MAX_DOC_BYTES)")
	fs.Int64Var(&f.Limits.MaxOrgBytes, "attachment-max-org-bytes", d.MaxOrgBytes, "most bytes of files of one organisation (env FIELDSYNC_ATTACHMENT_MAX_ORG_BYTES)")
	fs.Int64Var(&f.Limits.ChunkBytes, "attachment-chunk", d.ChunkBytes, "largest upload chunk in bytes; at most --max-body (env FIELDSYNC_ATTACHMENT_CHUNK)")
	fs.StringVar(&f.Types, "attachment-types", strings.Join(d.Types, ","), "comma-separated content types devices may upload, of "+strings.Join(attachment.KnownTypes, ", ")+" (env FIELDSYNC_ATTACHMENT_TYPES)")
	fs.DurationVar(&f.Retention, "attachment-retention", 30*24*time.Hour, "how long the bytes of a deleted file, or of a deleted document's files, are kept (env FIELDSYNC_ATTACHMENT_RETENTION)")
	fs.DurationVar(&f.Abandoned, "attachment-abandoned", 7*24*time.Hour, "how long an unfinished upload is kept for the phone to resume (env FIELDSYNC_ATTACHMENT_ABANDONED)")
	fs.DurationVar(&f.Sweep, "attachment-sweep-interval", time.Hour, "how often this instance collects deleted files and abandoned uploads, 0 for never (env FIELDSYNC_ATTACHMENT_SWEEP_INTERVAL)")
}

func (f *attachmentFlags) check(maxBody int) error {
	if f.Limits.ChunkBytes > int64(maxBody)-4096 {
		return usageError(fmt.Sprintf("--attachment-chunk (FIELDSYNC_ATTACHMENT_CHUNK) must leave room in --max-body (%d bytes)", maxBody))
	}
	f.Limits.Types = strings.Split(f.Types, ",")
	return nil
}

// orgLister lists organisations for the sweep (both stores implement it).
type orgLister interface {
	Orgs(ctx context.Context) ([]string, error)
}

// startAttachments opens the blob store and the service and starts the
// sweep; stop ends the sweep.
func startAttachments(ctx context.Context, f attachmentFlags, data string, eng *engine.Engine, store engine.Store, log *slog.Logger) (*attachment.Service, func(), error) {
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
		Limits: f.Limits, Retention: f.Retention, Abandoned: f.Abandoned})
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
