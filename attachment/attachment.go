// Package attachment owns files attached to documents: shelf photos,
// signatures, proofs of delivery (docs/attachments.md). It checks what a
// device declares (type, size, name, limits), takes the bytes in resumable
// chunks into a staging directory, verifies size and SHA-256 before anything
// becomes visible, keeps the bytes in a blob.Store, and records the metadata
// as a document of the engine's attachments collection, so it syncs with its
// parent and moves with it when a customer is reassigned. Who may read the
// parent may read its files: every request is authorised by the engine's
// read rules on the parent document.
//
// It knows the engine's types and the blob interface; it must not import
// HTTP, database or cloud packages (those live in server/, attachment/disk,
// attachment/s3blob).
package attachment

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/attachment/blob"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Engine is what the service needs of the sync engine.
type Engine interface {
	// Visible decides who reads a parent (and so its files).
	Visible(ctx context.Context, actor engine.Actor, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error)
	// Upsert writes attachment metadata as the server.
	Upsert(ctx context.Context, actor engine.Actor, source string, docs []engine.UpsertDoc) ([]engine.Outcome, error)
	// Grant gives an attachment its parent's role keys.
	Grant(ctx context.Context, org string, grants map[engine.DocRef][]string) error
}

// Docs reads committed documents and index feeds (the sync store).
type Docs interface {
	Get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error)
	Pull(ctx context.Context, q engine.PullQuery) (engine.PullPage, error)
}

// Limits bound what devices may store; docs/attachments.md lists the
// defaults and the serve flags that change them.
type Limits struct {
	MaxFileBytes     int64    // one file
	MaxPerDocument   int      // files on one document
	MaxDocumentBytes int64    // bytes on one document
	MaxOrgBytes      int64    // bytes of one organisation (live files)
	ChunkBytes       int64    // largest chunk of one request
	Types            []string // allowed content types
	MaxPixels        int64    // largest image a thumbnail is made of
}

// DefaultLimits are the documented defaults.
var DefaultLimits = Limits{
	MaxFileBytes:     25 << 20,
	MaxPerDocument:   20,
	MaxDocumentBytes: 100 << 20,
	MaxOrgBytes:      50 << 30,
	ChunkBytes:       1 << 20,
	Types:            []string{"image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf"},
	MaxPixels:        50_000_000,
}

// KnownTypes are the content types the service can recognise by their
// first bytes; Limits.Types is a subset.
var KnownTypes = []string{"image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf"}

// Config wires a Service.
type Config struct {
	Engine Engine
	Docs   Docs
	Blobs  blob.Store
	// Staging is the directory of upload sessions (local to this
	// instance; docs/attachments.md, "Several instances").
	Staging string
	Limits  Limits
	// Retention is how long the bytes of a deleted file (or of a file whose
	// document was deleted) are kept before the sweep removes them.
	Retention time.Duration
	// Abandoned is how long an upload session may sit unfinished before
	// the sweep removes it.
	Abandoned time.Duration
	Now       func() time.Time
}

// Service is the attachment service; safe for concurrent use.
type Service struct {
	cfg    Config
	locks  [64]sync.Mutex // upload sessions, striped by key
	thumbs chan struct{}  // bounds concurrent thumbnail work (thumb.go)
}

// New returns a service; zero limits take the defaults.
func New(cfg Config) (*Service, error) {
	if cfg.Engine == nil || cfg.Docs == nil || cfg.Blobs == nil || cfg.Staging == "" {
		return nil, fmt.Errorf("attachment: needs an engine, docs, blobs and a staging directory")
	}
	l, d := &cfg.Limits, DefaultLimits
	setDefault(&l.MaxFileBytes, d.MaxFileBytes)
	setDefault(&l.MaxDocumentBytes, d.MaxDocumentBytes)
	setDefault(&l.MaxOrgBytes, d.MaxOrgBytes)
	setDefault(&l.ChunkBytes, d.ChunkBytes)
	setDefault(&l.MaxPixels, d.MaxPixels)
	if l.MaxPerDocument <= 0 {
		l.MaxPerDocument = d.MaxPerDocument
	}
	if len(l.Types) == 0 {
		l.Types = d.Types
	}
	for _, t := range l.Types {
		if !slices.Contains(KnownTypes, t) {
			return nil, fmt.Errorf("attachment: content type %q is not one of %v", t, KnownTypes)
		}
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	if cfg.Abandoned <= 0 {
		cfg.Abandoned = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Staging, 0o700); err != nil {
		return nil, fmt.Errorf("attachment: %w", err)
	}
	return &Service{cfg: cfg, thumbs: make(chan struct{}, 2)}, nil
}

func setDefault(v *int64, d int64) {
	if *v <= 0 {
		*v = d
	}
}

// Limits returns the limits in force.
func (s *Service) Limits() Limits { return s.cfg.Limits }

// lock serialises the requests of one upload session on this instance.
func (s *Service) lock(org, id string) func() {
	h := sha256.Sum256([]byte(org + "\x00" + id))
	m := &s.locks[binary.BigEndian.Uint64(h[:8])%uint64(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// Parents are the collections a file may belong to.
var Parents = []string{fieldsales.CollCustomers, fieldsales.CollVisitLogs, fieldsales.CollOrders, fieldsales.CollCustomerNotes, fieldsales.CollFollowUps}

// Error codes of the attachment API (docs/attachments.md).
const (
	CodeTypeNotAllowed    = "attachment_type_not_allowed"
	CodeContentMismatch   = "attachment_content_mismatch"
	CodeTooLarge          = "attachment_too_large"
	CodeDocumentFull      = "document_attachments_full"
	CodeOrgStorageFull    = "organisation_storage_full"
	CodeInvalidFileName   = "invalid_file_name"
	CodeHashMismatch      = "hash_mismatch"
	CodeSizeMismatch      = "size_mismatch"
	CodeOffsetMismatch    = "upload_offset_mismatch"
	CodeChunkTooLarge     = "chunk_too_large"
	CodeAttachmentExists  = "attachment_exists"
	CodeNoThumbnail       = "thumbnail_unavailable"
	CodeAttachmentDeleted = "attachment_deleted"
)

// Codes lists every code above, for the API description.
var Codes = []string{CodeTypeNotAllowed, CodeContentMismatch, CodeTooLarge, CodeDocumentFull, CodeOrgStorageFull,
	CodeInvalidFileName, CodeHashMismatch, CodeSizeMismatch, CodeOffsetMismatch, CodeChunkTooLarge, CodeAttachmentExists,
	CodeNoThumbnail, CodeAttachmentDeleted}

// Location is where a photo was taken.
type Location struct {
	Lat       float64  `json:"lat"`
	Lng       float64  `json:"lng"`
	AccuracyM *float64 `json:"accuracy_m,omitempty"`
}

// Meta is an attachment document's body (schemas/attachments.json).
type Meta struct {
	ParentCollection string    `json:"parent_collection"`
	ParentID         string    `json:"parent_id"`
	CustomerID       string    `json:"customer_id,omitempty"`
	ContentType      string    `json:"content_type"`
	Size             int64     `json:"size"`
	SHA256           string    `json:"sha256"`
	Filename         string    `json:"filename"`
	Caption          string    `json:"caption,omitempty"`
	TakenAt          string    `json:"taken_at,omitempty"`
	Location         *Location `json:"location,omitempty"`
	UploadedBy       string    `json:"uploaded_by"`
	UploadedAt       string    `json:"uploaded_at"`
	DeletedAt        string    `json:"deleted_at,omitempty"`
	DeletedBy        string    `json:"deleted_by,omitempty"`
	PurgedAt         string    `json:"purged_at,omitempty"`
}

// Parent is the document the file belongs to.
func (m *Meta) Parent() engine.DocRef {
	return engine.DocRef{Collection: m.ParentCollection, ID: m.ParentID}
}

// Attachment is a stored file's metadata with its id and version.
type Attachment struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	Meta
}

// blobKey is where an organisation's bytes of one hash live: files with the
// same bytes in one organisation share them, never across organisations.
func blobKey(org, sha string) string { return orgDir(org) + "/" + sha }

// thumbKey is where a thumbnail of width w of those bytes lives.
func thumbKey(org, sha string, w int) string {
	return fmt.Sprintf("%s/thumb/%s-%d.jpg", orgDir(org), sha, w)
}

// orgDir is an organisation's key prefix: its id when that is a safe key
// segment, else a hash of it (ids are not otherwise constrained).
func orgDir(org string) string {
	safe := len(org) > 0 && len(org) <= 64
	for _, r := range org {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			safe = false
		}
	}
	if safe {
		return "o-" + org
	}
	h := sha256.Sum256([]byte(org))
	return "h-" + hex.EncodeToString(h[:16])
}

func decodeMeta(raw json.RawMessage) (Meta, error) {
	var m Meta
	err := json.Unmarshal(raw, &m)
	return m, err
}
