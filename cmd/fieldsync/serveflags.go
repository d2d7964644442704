package main

// serve's flags of each part the app package wires (docs/operations.md):
// names and usage text, one function a part; the defaults are the values
// the config holds when registered (app.Defaults).

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/app"
	"github.com/fieldsync/fieldsync/attachment"
	"github.com/fieldsync/fieldsync/fieldsales"
)

func registerStream(fs *flag.FlagSet, f *app.StreamConfig) {
	fs.DurationVar(&f.Poll, "stream-poll", f.Poll, "how often the live stream asks the store for changes written through other instances; 0: 50ms on MongoDB, 1s on SQLite, where local commits wake it at once (env FIELDSYNC_STREAM_POLL)")
	fs.DurationVar(&f.Heartbeat, "stream-heartbeat", f.Heartbeat, "heartbeat of idle live streams and renewal of presence records (env FIELDSYNC_STREAM_HEARTBEAT)")
	fs.DurationVar(&f.Recheck, "stream-recheck", f.Recheck, "how often a live stream's token and access are checked again (env FIELDSYNC_STREAM_RECHECK)")
	fs.IntVar(&f.MaxPerUser, "stream-max-per-user", f.MaxPerUser, "devices of one user that may stream from this instance (env FIELDSYNC_STREAM_MAX_PER_USER)")
	fs.IntVar(&f.MaxStreams, "stream-max", f.MaxStreams, "live streams this instance holds (env FIELDSYNC_STREAM_MAX)")
}

func registerVisits(fs *flag.FlagSet, v *fieldsales.VisitRules) {
	fs.Float64Var(&v.RadiusM, "visit-radius", v.RadiusM,
		"metres from the customer's location within which a check-in is verified (env FIELDSYNC_VISIT_RADIUS)")
	fs.Float64Var(&v.MaxAccuracyM, "visit-max-accuracy", v.MaxAccuracyM,
		"largest GPS accuracy radius in metres a verified check-in may report (env FIELDSYNC_VISIT_MAX_ACCURACY)")
	fs.DurationVar(&v.ClockTolerance, "clock-tolerance", v.ClockTolerance,
		"device clock offsets up to this are taken for transit time and not corrected (env FIELDSYNC_CLOCK_TOLERANCE)")
}

func registerPush(fs *flag.FlagSet, f *app.PushConfig) {
	fs.StringVar(&f.FCMCredentials, "fcm-credentials", f.FCMCredentials, "Firebase service-account JSON file; empty: GOOGLE_APPLICATION_CREDENTIALS if set, else the log sender (env FIELDSYNC_FCM_CREDENTIALS)")
	fs.StringVar(&f.FCMProject, "fcm-project", f.FCMProject, "Firebase project id; empty: the one the credentials name (env FIELDSYNC_FCM_PROJECT)")
	fs.StringVar(&f.FCMEndpoint, "fcm-endpoint", f.FCMEndpoint, "FCM API base URL; empty: Google's (https://fcm.googleapis.com/v1); for a proxy or a test double (env FIELDSYNC_FCM_ENDPOINT)")
	fs.DurationVar(&f.Lease, "push-lease", f.Lease, "how long a claimed notification stays with this instance; another instance retries it after that if this one died (env FIELDSYNC_PUSH_LEASE)")
	fs.DurationVar(&f.Retention, "push-retention", f.Retention, "how long sent and dead notifications stay in the outbox (env FIELDSYNC_PUSH_RETENTION)")
	fs.DurationVar(&f.MaxAge, "push-max-age", f.MaxAge, "changes and transitions older than this when the tailer reads them are not announced (env FIELDSYNC_PUSH_MAX_AGE)")
	fs.IntVar(&f.Batch, "push-batch", f.Batch, "notifications one dispatch pass claims (env FIELDSYNC_PUSH_BATCH)")
	fs.IntVar(&f.MaxAttempts, "push-max-attempts", f.MaxAttempts, "send attempts before a notification is kept as dead (env FIELDSYNC_PUSH_MAX_ATTEMPTS)")
	fs.DurationVar(&f.Poll, "push-poll", f.Poll, "how often the change feed and the outbox are polled (env FIELDSYNC_PUSH_POLL)")
	fs.BoolVar(&f.Off, "push-off", f.Off, "do not tail or dispatch on this instance; the device routes stay (env FIELDSYNC_PUSH_OFF=1)")
}

func registerWebhooks(fs *flag.FlagSet, f *app.WebhookConfig) {
	fs.BoolVar(&f.AllowLoopback, "webhooks-allow-loopback", f.AllowLoopback, "let webhook subscriptions deliver to loopback addresses over http, for development (env FIELDSYNC_WEBHOOKS_ALLOW_LOOPBACK=1)")
	fs.DurationVar(&f.Poll, "webhooks-poll", f.Poll, "how often the change feed and the deliveries are polled (env FIELDSYNC_WEBHOOKS_POLL)")
	fs.IntVar(&f.MaxAttempts, "webhooks-max-attempts", f.MaxAttempts, "attempts before a delivery is dead (env FIELDSYNC_WEBHOOKS_MAX_ATTEMPTS)")
	fs.DurationVar(&f.BaseBackoff, "webhooks-backoff", f.BaseBackoff, "wait after the first failed attempt, doubled after each (env FIELDSYNC_WEBHOOKS_BACKOFF)")
	fs.DurationVar(&f.MaxBackoff, "webhooks-max-backoff", f.MaxBackoff, "longest wait between attempts, Retry-After included (env FIELDSYNC_WEBHOOKS_MAX_BACKOFF)")
	fs.DurationVar(&f.Timeout, "webhooks-timeout", f.Timeout, "time one attempt may take (env FIELDSYNC_WEBHOOKS_TIMEOUT)")
	fs.DurationVar(&f.Lease, "webhooks-lease", f.Lease, "how long a claimed delivery stays with this instance; another sends it after that if this one died; 0: --webhooks-timeout + 30s (env FIELDSYNC_WEBHOOKS_LEASE)")
	fs.IntVar(&f.DisableAfter, "webhooks-disable-after", f.DisableAfter, "consecutive failed attempts (over --webhooks-failing-for) that disable a subscription (env FIELDSYNC_WEBHOOKS_DISABLE_AFTER)")
	fs.DurationVar(&f.FailingFor, "webhooks-failing-for", f.FailingFor, "how long a subscription must keep failing before it is disabled (env FIELDSYNC_WEBHOOKS_FAILING_FOR)")
	fs.DurationVar(&f.MaxAge, "webhooks-max-age", f.MaxAge, "events older than this when the tailer reads them are not delivered (env FIELDSYNC_WEBHOOKS_MAX_AGE)")
	fs.BoolVar(&f.Off, "webhooks-off", f.Off, "do not tail or deliver on this instance; the admin routes stay (env FIELDSYNC_WEBHOOKS_OFF=1)")
}

func registerRetention(fs *flag.FlagSet, f *app.RetentionConfig) {
	fs.DurationVar(&f.History, "retention-history", f.History, "how long deletes, evictions and the recorded outcomes of retried pushes are kept; a device that did not sync for longer starts over, keeping its unsynced changes (env FIELDSYNC_RETENTION_HISTORY)")
	fs.DurationVar(&f.Sessions, "retention-sessions", f.Sessions, "how long sign-in sessions are kept after they expired or were revoked (env FIELDSYNC_RETENTION_SESSIONS)")
	fs.DurationVar(&f.Interval, "retention-interval", f.Interval, "how often this instance compacts history and prunes sessions, 0 for never (env FIELDSYNC_RETENTION_INTERVAL)")
	fs.DurationVar(&f.Wait, "retention-wait", f.Wait, "how long an announced history floor stands before the history below it is deleted; at least 5m (env FIELDSYNC_RETENTION_WAIT)")
}

func registerConsole(fs *flag.FlagSet, f *app.ConsoleConfig) {
	fs.BoolVar(&f.SecureCookie, "console-secure-cookie", f.SecureCookie, "mark the console's cookies Secure even on plain HTTP (TLS ends at a proxy); requests over TLS always get Secure cookies (env FIELDSYNC_CONSOLE_SECURE_COOKIE)")
	fs.DurationVar(&f.SessionTTL, "console-session-ttl", f.SessionTTL, "longest a console sign-in lasts (env FIELDSYNC_CONSOLE_SESSION_TTL)")
	fs.DurationVar(&f.Poll, "console-poll", f.Poll, "how often an open queue page refreshes its list while its live stream is not open (env FIELDSYNC_CONSOLE_POLL)")
	fs.StringVar(&f.Tiles, "console-tiles", f.Tiles, "map tile URL with {z}, {x} and {y} under the map of a rep's day, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png; empty: a plain background, no request leaves the browser for tiles (env FIELDSYNC_CONSOLE_TILES)")
	fs.StringVar(&f.TileAttribution, "console-tile-attribution", f.TileAttribution, "the attribution the tile server requires, shown under the map, e.g. \"© OpenStreetMap contributors\" (env FIELDSYNC_CONSOLE_TILE_ATTRIBUTION)")
}

func registerAttachments(fs *flag.FlagSet, f *app.AttachmentsConfig, types *string) {
	fs.StringVar(&f.Dir, "attachments-dir", f.Dir, "directory of attachment uploads in progress, and of the files themselves without --attachments-s3-bucket; default <data>/attachments (env FIELDSYNC_ATTACHMENTS_DIR)")
	fs.StringVar(&f.S3Bucket, "attachments-s3-bucket", f.S3Bucket, "keep attachment files in this bucket of an S3-compatible store instead of the data directory; credentials from the AWS SDK's chain (env FIELDSYNC_ATTACHMENTS_S3_BUCKET)")
	fs.StringVar(&f.S3Prefix, "attachments-s3-prefix", f.S3Prefix, "key prefix inside the bucket (env FIELDSYNC_ATTACHMENTS_S3_PREFIX)")
	fs.StringVar(&f.S3Endpoint, "attachments-s3-endpoint", f.S3Endpoint, "URL of a non-AWS S3-compatible store (MinIO, Ceph); path-style addressing (env FIELDSYNC_ATTACHMENTS_S3_ENDPOINT)")
	fs.StringVar(&f.S3Region, "attachments-s3-region", f.S3Region, "the bucket's region; default from the AWS SDK's chain (env FIELDSYNC_ATTACHMENTS_S3_REGION)")
	fs.Int64Var(&f.Limits.MaxFileBytes, "attachment-max-file", f.Limits.MaxFileBytes, "largest attachment file in bytes (env FIELDSYNC_ATTACHMENT_MAX_FILE)")
	fs.IntVar(&f.Limits.MaxPerDocument, "attachment-max-per-doc", f.Limits.MaxPerDocument, "most files on one document (env FIELDSYNC_ATTACHMENT_MAX_PER_DOC)")
	fs.Int64Var(&f.Limits.MaxDocumentBytes, "attachment-max-doc-bytes", f.Limits.MaxDocumentBytes, "most bytes of files on one document (env FIELDSYNC_ATTACHMENT_MAX_DOC_BYTES)")
	fs.Int64Var(&f.Limits.MaxOrgBytes, "attachment-max-org-bytes", f.Limits.MaxOrgBytes, "most bytes of files of one organisation (env FIELDSYNC_ATTACHMENT_MAX_ORG_BYTES)")
	fs.Int64Var(&f.Limits.ChunkBytes, "attachment-chunk", f.Limits.ChunkBytes, "largest upload chunk in bytes; at most --max-body (env FIELDSYNC_ATTACHMENT_CHUNK)")
	*types = strings.Join(f.Limits.Types, ",")
	fs.StringVar(types, "attachment-types", *types, "comma-separated content types devices may upload, of "+strings.Join(attachment.KnownTypes, ", ")+" (env FIELDSYNC_ATTACHMENT_TYPES)")
	fs.DurationVar(&f.Retention, "attachment-retention", f.Retention, "how long the bytes of a deleted file, or of a deleted document's files, are kept (env FIELDSYNC_ATTACHMENT_RETENTION)")
	fs.DurationVar(&f.Abandoned, "attachment-abandoned", f.Abandoned, "how long an unfinished upload is kept for the phone to resume (env FIELDSYNC_ATTACHMENT_ABANDONED)")
	fs.DurationVar(&f.Sweep, "attachment-sweep-interval", f.Sweep, "how often this instance collects deleted files and abandoned uploads, 0 for never (env FIELDSYNC_ATTACHMENT_SWEEP_INTERVAL)")
}

// checkAttachments takes the content types from their flag and refuses a
// chunk that a request body could not carry.
func checkAttachments(f *app.AttachmentsConfig, types string, maxBody int) error {
	if f.Limits.ChunkBytes > int64(maxBody)-4096 {
		return usageError(fmt.Sprintf("--attachment-chunk (FIELDSYNC_ATTACHMENT_CHUNK) must leave room in --max-body (%d bytes)", maxBody))
	}
	f.Limits.Types = strings.Split(types, ",")
	return nil
}

// checkRetention refuses retention settings that would lose what devices
// still need.
func checkRetention(f app.RetentionConfig) error {
	switch {
	case f.History < 24*time.Hour:
		return usageError("--retention-history (FIELDSYNC_RETENTION_HISTORY) must be at least 24h: devices offline over a weekend must not start over")
	case f.Sessions < 0 || f.Interval < 0:
		return usageError("--retention-sessions and --retention-interval must not be negative")
	case f.Wait < 5*time.Minute:
		// Instances cache a floor for a minute and a pull lasts at most
		// the store's call timeout: the wait must outlast both.
		return usageError("--retention-wait (FIELDSYNC_RETENTION_WAIT) must be at least 5m")
	}
	return nil
}
