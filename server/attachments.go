package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/attachment"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Attachments is the attachment service (package attachment): files on
// documents, uploaded in resumable chunks (docs/attachments.md).
type Attachments interface {
	Begin(ctx context.Context, actor engine.Actor, d attachment.Declaration) (attachment.Status, error)
	Append(ctx context.Context, actor engine.Actor, id string, offset int64, chunk []byte) (attachment.Status, error)
	Status(ctx context.Context, actor engine.Actor, id string) (attachment.Status, error)
	Get(ctx context.Context, actor engine.Actor, id string) (*attachment.Attachment, error)
	List(ctx context.Context, actor engine.Actor, parent engine.DocRef) ([]attachment.Attachment, error)
	Content(ctx context.Context, actor engine.Actor, id string, offset, length int64) (*attachment.Attachment, io.ReadCloser, error)
	Thumbnail(ctx context.Context, actor engine.Actor, id string, w int) (*attachment.Attachment, []byte, error)
	Delete(ctx context.Context, actor engine.Actor, id string) error
}

// attachmentsPath prefixes every attachment route; downloads are not
// compressed (stream.go's uncompressed): photos and PDFs are compressed
// already, and a compressed body would break byte ranges.
const attachmentsPath = "/v1/attachments"

// HeaderUploadOffset carries where a chunk starts, and where an upload
// stands in the answer to a chunk sent for the wrong offset.
const HeaderUploadOffset = "Upload-Offset"

// downloadTimeout bounds one download, body included: a phone on a slow
// network may take minutes for a large PDF.
const downloadTimeout = 10 * time.Minute

func (s *Server) attachmentRoutes(v1 fiber.Router) {
	limit := s.rateLimit()
	v1.Post("/attachments", s.authenticate, limit, s.beginAttachment)
	v1.Get("/attachments", s.authenticate, limit, s.listAttachments)
	v1.Get("/attachments/:id", s.authenticate, limit, s.attachmentStatus)
	v1.Delete("/attachments/:id", s.authenticate, limit, s.deleteAttachment)
	v1.Patch("/attachments/:id/content", s.authenticate, limit, s.appendAttachment)
	v1.Get("/attachments/:id/content", s.authenticate, limit, s.downloadAttachment)
	v1.Get("/attachments/:id/thumbnail", s.authenticate, limit, s.thumbnail)
}

func (s *Server) beginAttachment(c *fiber.Ctx) error {
	var d attachment.Declaration
	if err := decodeStrict(c.Body(), &d); err != nil {
		return err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	st, err := s.cfg.Attachments.Begin(ctx, actorOf(c), d)
	if err != nil {
		return err
	}
	return c.JSON(st)
}

func (s *Server) listAttachments(c *fiber.Ctx) error {
	parent := engine.DocRef{Collection: strings.Clone(c.Query("parent_collection")), ID: strings.Clone(c.Query("parent_id"))}
	if parent.Collection == "" || parent.ID == "" {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/parent_id", "parent_collection and parent_id are required")
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	list, err := s.cfg.Attachments.List(ctx, actorOf(c), parent)
	if err != nil {
		return err
	}
	if list == nil {
		list = []attachment.Attachment{}
	}
	return c.JSON(fiber.Map{"attachments": list})
}

func (s *Server) attachmentStatus(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	st, err := s.cfg.Attachments.Status(ctx, actorOf(c), strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	return c.JSON(st)
}

func (s *Server) deleteAttachment(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	if err := s.cfg.Attachments.Delete(ctx, actorOf(c), strings.Clone(c.Params("id"))); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) appendAttachment(c *fiber.Ctx) error {
	off, err := strconv.ParseInt(c.Get(HeaderUploadOffset), 10, 64)
	if err != nil || off < 0 {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "", "an %s header with the chunk's first byte is required", HeaderUploadOffset)
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	// The body is written to the staging file before Append returns, so
	// Fiber's buffer is not kept.
	st, err := s.cfg.Attachments.Append(ctx, actorOf(c), strings.Clone(c.Params("id")), off, c.Body())
	var oe *attachment.OffsetError
	if errors.As(err, &oe) {
		c.Set(HeaderUploadOffset, strconv.FormatInt(oe.Offset, 10))
	}
	if err != nil {
		return err
	}
	c.Set(HeaderUploadOffset, strconv.FormatInt(st.Offset, 10))
	return c.JSON(st)
}

func (s *Server) downloadAttachment(c *fiber.Ctx) error {
	actor, id := actorOf(c), strings.Clone(c.Params("id"))
	// The body streams after the handler returns: the context ends when
	// the stream is closed, not here.
	ctx, cancel := context.WithTimeout(context.Background(), downloadTimeout)
	a, err := s.cfg.Attachments.Get(ctx, actor, id)
	if err != nil {
		cancel()
		return err
	}
	etag := `"` + a.SHA256 + `"`
	c.Set(fiber.HeaderETag, etag)
	// no-cache: a device keeps its copy but asks each time, so a file it
	// may no longer read is not served from a shared cache.
	c.Set(fiber.HeaderCacheControl, "private, no-cache")
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set("X-Content-Type-Options", "nosniff")
	if match := c.Get(fiber.HeaderIfNoneMatch); match != "" && (match == etag || match == "*" || strings.Contains(match, etag)) {
		cancel()
		return c.SendStatus(fiber.StatusNotModified)
	}
	off, n, partial, ok := byteRange(c.Get(fiber.HeaderRange), a.Size)
	if !ok {
		cancel()
		c.Set(fiber.HeaderContentRange, fmt.Sprintf("bytes */%d", a.Size))
		return c.SendStatus(fiber.StatusRequestedRangeNotSatisfiable)
	}
	_, rc, err := s.cfg.Attachments.Content(ctx, actor, id, off, n)
	if err != nil {
		cancel()
		return err
	}
	c.Set(fiber.HeaderContentType, a.ContentType)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+a.Filename+`"`)
	if partial {
		c.Status(fiber.StatusPartialContent)
		c.Set(fiber.HeaderContentRange, fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, a.Size))
	}
	return c.SendStream(&cancelOnClose{rc, cancel}, int(n))
}

// cancelOnClose ends a download's context when Fiber closes its stream.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// byteRange reads a Range header of one range over size bytes: the offset,
// length, whether it is a range at all, and whether it is satisfiable.
// Several ranges are answered with the whole file, as RFC 9110 allows.
func byteRange(h string, size int64) (off, n int64, partial, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if h == "" || !found || strings.Contains(spec, ",") {
		return 0, size, false, true
	}
	first, last, _ := strings.Cut(strings.TrimSpace(spec), "-")
	if first == "" { // the last n bytes
		k, err := strconv.ParseInt(last, 10, 64)
		if err != nil || k <= 0 {
			return 0, size, false, true
		}
		k = min(k, size)
		return size - k, k, true, size > 0
	}
	a, err := strconv.ParseInt(first, 10, 64)
	if err != nil || a < 0 {
		return 0, size, false, true
	}
	if a >= size {
		return 0, 0, false, false
	}
	b := size - 1
	if last != "" {
		if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
			return 0, size, false, true
		}
		b = min(b, size-1)
	}
	return a, b - a + 1, true, true
}

func (s *Server) thumbnail(c *fiber.Ctx) error {
	w, err := strconv.Atoi(c.Query("w", "256"))
	if err != nil {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/w", "w must be one of %v", attachment.ThumbWidths)
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	a, b, err := s.cfg.Attachments.Thumbnail(ctx, actorOf(c), strings.Clone(c.Params("id")), w)
	if err != nil {
		return err
	}
	etag := fmt.Sprintf(`"%s-%d"`, a.SHA256, w)
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "private, no-cache")
	if c.Get(fiber.HeaderIfNoneMatch) == etag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, "image/jpeg")
	return c.Send(b)
}
