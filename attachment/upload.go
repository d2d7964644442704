package attachment

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/attachment/blob"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Declaration is what a device says about a file before sending its bytes.
type Declaration struct {
	ID               string    `json:"id"`
	ParentCollection string    `json:"parent_collection"`
	ParentID         string    `json:"parent_id"`
	Filename         string    `json:"filename"`
	ContentType      string    `json:"content_type"`
	Size             int64     `json:"size"`
	SHA256           string    `json:"sha256"`
	Caption          string    `json:"caption,omitempty"`
	TakenAt          string    `json:"taken_at,omitempty"`
	Location         *Location `json:"location,omitempty"`
}

// Status is the state of an upload: where to continue, or the file.
type Status struct {
	ID     string `json:"id"`
	Status string `json:"status"` // StatusUploading or StatusComplete
	Offset int64  `json:"offset"` // bytes received; the next chunk starts here
	Size   int64  `json:"size"`
	// ChunkBytes is the largest chunk the server takes.
	ChunkBytes int64       `json:"chunk_bytes"`
	Attachment *Attachment `json:"attachment,omitempty"` // once complete
}

// Upload states.
const (
	StatusUploading = "uploading"
	StatusComplete  = "complete"
)

var (
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
	shaPattern  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	namePattern = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9 ._-]{0,127}$`)
)

func invalid(code, ptr, format string, args ...any) error {
	return engine.Errorf(engine.KindInvalid, code, ptr, format, args...)
}

// check refuses a declaration the limits or the schema would refuse,
// before any byte is sent.
func (s *Service) check(d *Declaration) error {
	l := s.cfg.Limits
	switch {
	case !idPattern.MatchString(d.ID):
		return invalid(engine.CodeInvalidRequest, "/id", "id must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	case !slices.Contains(Parents, d.ParentCollection):
		return invalid(engine.CodeInvalidRequest, "/parent_collection", "files belong to one of %v", Parents)
	case !idPattern.MatchString(d.ParentID):
		return invalid(engine.CodeInvalidRequest, "/parent_id", "parent_id must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	case !namePattern.MatchString(d.Filename) || strings.Contains(d.Filename, ".."):
		return invalid(CodeInvalidFileName, "/filename",
			"a file name is 1-128 characters of A-Z a-z 0-9 space . _ -, not starting with a dot or space, without '..' or a path")
	case !slices.Contains(l.Types, d.ContentType):
		return invalid(CodeTypeNotAllowed, "/content_type", "content type %q is not allowed; allowed: %s", d.ContentType, strings.Join(l.Types, ", "))
	case d.Size < 1:
		return invalid(engine.CodeInvalidRequest, "/size", "size must be at least 1 byte")
	case d.Size > l.MaxFileBytes:
		return engine.Errorf(engine.KindTooLarge, CodeTooLarge, "/size", "a file may hold at most %d bytes, this one declares %d", l.MaxFileBytes, d.Size)
	case !shaPattern.MatchString(d.SHA256):
		return invalid(engine.CodeInvalidRequest, "/sha256", "sha256 must be 64 lower-case hex digits")
	case len(d.Caption) > 500:
		return invalid(engine.CodeInvalidRequest, "/caption", "a caption holds at most 500 bytes")
	}
	if d.TakenAt != "" {
		if _, err := time.Parse(time.RFC3339Nano, d.TakenAt); err != nil {
			return invalid(engine.CodeInvalidRequest, "/taken_at", "taken_at must be an RFC 3339 time")
		}
	}
	if p := d.Location; p != nil {
		bad := math.IsNaN(p.Lat) || math.IsNaN(p.Lng) || p.Lat < -90 || p.Lat > 90 || p.Lng < -180 || p.Lng > 180 ||
			p.AccuracyM != nil && (*p.AccuracyM < 0 || math.IsNaN(*p.AccuracyM))
		if bad {
			return invalid(engine.CodeInvalidRequest, "/location", "location needs lat in [-90, 90], lng in [-180, 180], accuracy_m >= 0")
		}
	}
	return nil
}

// session is an upload in progress, kept beside its bytes in the staging
// directory.
type session struct {
	Org     string      `json:"org"`
	User    string      `json:"user"`
	Decl    Declaration `json:"declaration"`
	Created time.Time   `json:"created"`
	Done    bool        `json:"done"`
}

// paths returns the staging files of (org, id): named by a hash so that no
// id or organisation can name a path.
func (s *Service) paths(org, id string) (meta, part string) {
	h := sha256.Sum256([]byte(org + "\x00" + id))
	base := filepath.Join(s.cfg.Staging, hex.EncodeToString(h[:16]))
	return base + ".json", base + ".part"
}

func (s *Service) loadSession(org, id string) (*session, error) {
	mp, _ := s.paths(org, id)
	raw, err := os.ReadFile(mp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ss session
	if err := json.Unmarshal(raw, &ss); err != nil {
		return nil, fmt.Errorf("attachment: session %s: %w", mp, err)
	}
	return &ss, nil
}

// saveSession writes the session record atomically and durably.
func (s *Service) saveSession(ss *session) error {
	mp, _ := s.paths(ss.Org, ss.Decl.ID)
	raw, err := json.Marshal(ss)
	if err != nil {
		return err
	}
	tmp := mp + ".tmp"
	if err := writeSync(tmp, raw); err != nil {
		return err
	}
	if err := os.Rename(tmp, mp); err != nil {
		return err
	}
	return syncDir(s.cfg.Staging)
}

func writeSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// discard removes a session and its bytes: a refused upload leaves nothing.
func (s *Service) discard(org, id string) {
	mp, pp := s.paths(org, id)
	os.Remove(pp)
	os.Remove(mp)
}

func (s *Service) received(org, id string) (int64, error) {
	_, pp := s.paths(org, id)
	st, err := os.Stat(pp)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Begin starts (or resumes) the upload of a declared file and returns where
// to continue. Declaring the same file again is idempotent: it answers the
// offset reached, or the file once it is complete.
func (s *Service) Begin(ctx context.Context, actor engine.Actor, d Declaration) (Status, error) {
	if err := s.check(&d); err != nil {
		return Status{}, err
	}
	parent, err := s.parent(ctx, actor, d.Parent())
	if err != nil {
		return Status{}, err
	}
	defer s.lock(actor.Org, d.ID)()
	if a, err := s.stored(ctx, actor.Org, d.ID); err != nil || a != nil {
		if err != nil {
			return Status{}, err
		}
		if !sameFile(&a.Meta, &d) {
			return Status{}, exists(d.ID)
		}
		return s.complete(a), nil
	}
	ss, err := s.loadSession(actor.Org, d.ID)
	if err != nil {
		return Status{}, err
	}
	if ss != nil && (ss.User != actor.User || !sameDecl(&ss.Decl, &d)) {
		return Status{}, exists(d.ID)
	}
	if ss == nil {
		if err := s.checkRoom(ctx, actor.Org, d.Parent(), d.ID, d.Size); err != nil {
			return Status{}, err
		}
		ss = &session{Org: actor.Org, User: actor.User, Decl: d, Created: s.cfg.Now().UTC()}
		if err := s.saveSession(ss); err != nil {
			return Status{}, err
		}
	}
	off, err := s.received(actor.Org, d.ID)
	if err != nil {
		return Status{}, err
	}
	if off == d.Size {
		// Every byte arrived before a crash or a lost reply: finish now.
		return s.finish(ctx, actor, ss, parent)
	}
	return s.uploading(d, off), nil
}

func exists(id string) error {
	return engine.Errorf(engine.KindConflict, CodeAttachmentExists, "/id",
		"attachment %s exists with other content; a new file needs a new id", id)
}

// sameDecl compares declarations field by field (Location is a pointer).
func sameDecl(a, b *Declaration) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// sameFile reports whether a stored file is the one declared.
func sameFile(m *Meta, d *Declaration) bool {
	return m.SHA256 == d.SHA256 && m.Size == d.Size && m.Parent() == d.Parent()
}

// Parent is the document the declared file belongs to.
func (d *Declaration) Parent() engine.DocRef {
	return engine.DocRef{Collection: d.ParentCollection, ID: d.ParentID}
}

func (s *Service) uploading(d Declaration, off int64) Status {
	return Status{ID: d.ID, Status: StatusUploading, Offset: off, Size: d.Size, ChunkBytes: s.cfg.Limits.ChunkBytes}
}

func (s *Service) complete(a *Attachment) Status {
	return Status{ID: a.ID, Status: StatusComplete, Offset: a.Size, Size: a.Size, ChunkBytes: s.cfg.Limits.ChunkBytes, Attachment: a}
}

// OffsetError is a chunk sent for the wrong offset; Offset is where the
// upload stands, which the server returns in a header.
type OffsetError struct {
	Offset int64
	err    *engine.Error
}

func (e *OffsetError) Error() string { return e.err.Error() }

// Unwrap lets errors.As find the *engine.Error (its kind and code).
func (e *OffsetError) Unwrap() error { return e.err }

// Append writes a chunk at offset. A chunk at the wrong offset is refused
// with an *OffsetError saying where to continue; one that would pass the
// declared size ends the upload (size_mismatch, nothing kept). The chunk
// that completes the file verifies it and makes it visible.
func (s *Service) Append(ctx context.Context, actor engine.Actor, id string, offset int64, chunk []byte) (Status, error) {
	if int64(len(chunk)) > s.cfg.Limits.ChunkBytes {
		return Status{}, engine.Errorf(engine.KindTooLarge, CodeChunkTooLarge, "", "a chunk holds at most %d bytes", s.cfg.Limits.ChunkBytes)
	}
	defer s.lock(actor.Org, id)()
	ss, err := s.loadSession(actor.Org, id)
	if err != nil {
		return Status{}, err
	}
	if ss == nil || ss.User != actor.User || ss.Done {
		// Finished already (a retry whose first reply was lost), or
		// nothing of this caller's.
		if a, err := s.stored(ctx, actor.Org, id); err != nil || a != nil {
			if err != nil {
				return Status{}, err
			}
			if _, err := s.parent(ctx, actor, a.Parent()); err != nil {
				return Status{}, err
			}
			return s.complete(a), nil
		}
		return Status{}, notFound(id)
	}
	_, pp := s.paths(actor.Org, id)
	off, err := s.received(actor.Org, id)
	if err != nil {
		return Status{}, err
	}
	if offset != off {
		return Status{}, &OffsetError{Offset: off, err: engine.Errorf(engine.KindConflict, CodeOffsetMismatch, "",
			"the upload stands at byte %d; send the chunk from there", off)}
	}
	if off+int64(len(chunk)) > ss.Decl.Size {
		s.discard(actor.Org, id)
		return Status{}, invalid(CodeSizeMismatch, "/size", "more bytes than the %d declared; the upload is discarded", ss.Decl.Size)
	}
	if len(chunk) > 0 {
		f, err := os.OpenFile(pp, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return Status{}, err
		}
		_, werr := f.Write(chunk)
		if werr == nil {
			// Acknowledged bytes survive a crash: the offset answered
			// after a restart is never less than one answered before.
			werr = f.Sync()
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			// A partial write would move the offset past what the
			// device was told: cut back to where it stood.
			os.Truncate(pp, off)
			return Status{}, werr
		}
		off += int64(len(chunk))
	}
	if off < ss.Decl.Size {
		return s.uploading(ss.Decl, off), nil
	}
	parent, err := s.parent(ctx, actor, ss.Decl.Parent())
	if err != nil {
		return Status{}, err
	}
	return s.finish(ctx, actor, ss, parent)
}

func notFound(id string) error {
	return engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no attachment %s", id)
}

// finish verifies a fully received file, stores its bytes and records it.
// Called with the session's lock held.
func (s *Service) finish(ctx context.Context, actor engine.Actor, ss *session, parent *engine.Document) (Status, error) {
	d := ss.Decl
	_, pp := s.paths(actor.Org, d.ID)
	f, err := os.Open(pp)
	if err != nil {
		return Status{}, err
	}
	defer f.Close()
	h := sha256.New()
	head := make([]byte, 16)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	h.Write(head)
	size, err := io.Copy(h, f)
	if err != nil {
		return Status{}, err
	}
	size += int64(n)
	if size != d.Size {
		s.discard(actor.Org, d.ID)
		return Status{}, invalid(CodeSizeMismatch, "/size", "received %d bytes, %d declared; the upload is discarded", size, d.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.SHA256 {
		s.discard(actor.Org, d.ID)
		return Status{}, invalid(CodeHashMismatch, "/sha256", "the bytes received hash to %s, not the declared %s; the upload is discarded", got, d.SHA256)
	}
	if sniffed := Sniff(head); sniffed != d.ContentType {
		s.discard(actor.Org, d.ID)
		return Status{}, invalid(CodeContentMismatch, "/content_type", "the bytes are not %s (they look like %q); the upload is discarded", d.ContentType, sniffed)
	}
	if err := s.checkRoom(ctx, actor.Org, d.Parent(), d.ID, d.Size); err != nil {
		s.discard(actor.Org, d.ID)
		return Status{}, err
	}
	if err := s.keep(ctx, actor.Org, d, f); err != nil {
		return Status{}, err
	}
	a, err := s.record(ctx, actor, d, parent)
	if err != nil {
		return Status{}, err
	}
	ss.Done = true
	if err := s.saveSession(ss); err != nil {
		return Status{}, err
	}
	os.Remove(pp)
	return s.complete(a), nil
}

// keep makes sure the organisation's blob of the file's hash holds it.
// Bytes already stored are not written again, unless they are old enough
// that the sweep could be about to collect them (sweep.go).
func (s *Service) keep(ctx context.Context, org string, d Declaration, f *os.File) error {
	key := blobKey(org, d.SHA256)
	info, err := s.cfg.Blobs.Stat(ctx, key)
	switch {
	case err == nil && info.Size == d.Size && s.cfg.Now().Sub(info.Modified) < s.cfg.Retention/2:
		return nil
	case err != nil && !errors.Is(err, blob.ErrNotFound):
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return s.cfg.Blobs.Put(ctx, key, f, d.Size)
}

// record writes the attachment document (create-only: a retry after a
// crash finds it) and grants it its parent's role keys.
func (s *Service) record(ctx context.Context, actor engine.Actor, d Declaration, parent *engine.Document) (*Attachment, error) {
	m := Meta{ParentCollection: d.ParentCollection, ParentID: d.ParentID, ContentType: d.ContentType, Size: d.Size,
		SHA256: d.SHA256, Filename: d.Filename, Caption: d.Caption, TakenAt: d.TakenAt, Location: d.Location,
		UploadedBy: actor.User, UploadedAt: s.cfg.Now().UTC().Format(time.RFC3339Nano)}
	if d.ParentCollection == fieldsales.CollCustomers {
		m.CustomerID = d.ParentID
	} else {
		var pb struct {
			Customer string `json:"customer_id"`
		}
		json.Unmarshal(parent.Body, &pb) // validated when written
		m.CustomerID = pb.Customer
	}
	fields, err := toFields(m)
	if err != nil {
		return nil, err
	}
	// The owner is the parent's: a parent hanging off no customer is read
	// by its owner's key, and so must its files be.
	outs, err := s.cfg.Engine.Upsert(ctx, engine.Actor{Org: actor.Org, User: parent.Owner, Roles: []string{fieldsales.RoleAdmin}},
		"attachments", []engine.UpsertDoc{{Collection: engine.CollAttachments, ID: d.ID, Fields: fields, CreateOnly: true}})
	if err != nil {
		return nil, err
	}
	if o := outs[0]; o.Status == engine.StatusRejected {
		return nil, fmt.Errorf("attachment: record %s: %s: %s", d.ID, o.Error.Code, o.Error.Message)
	}
	var roles []string
	for _, k := range parent.Scopes {
		if strings.HasPrefix(k, "role:") {
			roles = append(roles, k)
		}
	}
	if len(roles) > 0 {
		if err := s.cfg.Engine.Grant(ctx, actor.Org, map[engine.DocRef][]string{{Collection: engine.CollAttachments, ID: d.ID}: roles}); err != nil {
			return nil, err
		}
	}
	a, err := s.stored(ctx, actor.Org, d.ID)
	if err != nil {
		return nil, err
	}
	if a == nil || !sameFile(&a.Meta, &d) {
		return nil, exists(d.ID)
	}
	return a, nil
}

func toFields(v any) (map[string]json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var f map[string]json.RawMessage
	return f, json.Unmarshal(raw, &f)
}

// Sniff names the allowed content type the first bytes of a file show, or
// "" for none: a declared type is believed only when the bytes agree.
func Sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return "image/jpeg"
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return "image/webp"
	case len(head) >= 12 && string(head[4:8]) == "ftyp" && slices.Contains([]string{"heic", "heix", "mif1", "msf1", "heim", "heis", "hevc"}, string(head[8:12])):
		return "image/heic"
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return "application/pdf"
	}
	return ""
}
