package console

import (
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/attachment"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Files is the attachment service (package attachment): photos and PDFs on
// visits, orders and follow-ups, with the API's authorization (whoever
// reads the document reads its files).
type Files interface {
	List(ctx context.Context, actor engine.Actor, parent engine.DocRef) ([]attachment.Attachment, error)
	Thumbnail(ctx context.Context, actor engine.Actor, id string, w int) (*attachment.Attachment, []byte, error)
	Content(ctx context.Context, actor engine.Actor, id string, offset, length int64) (*attachment.Attachment, io.ReadCloser, error)
}

// photoView is one file beside a visit or an order.
type photoView struct {
	ID, Filename, Caption, By, At string
	Image                         bool // a thumbnail can be drawn
}

// photos lists the files of parents the caller may read; a parent they
// may not read shows none.
func (cs *Console) photos(ctx context.Context, oi *orgInfo, actor engine.Actor, parents ...engine.DocRef) ([]photoView, error) {
	if cs.cfg.Files == nil {
		return nil, nil
	}
	var out []photoView
	for _, p := range parents {
		list, err := cs.cfg.Files.List(ctx, actor, p)
		if engine.ErrorKind(err) == engine.KindNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, a := range list {
			out = append(out, photoView{ID: a.ID, Filename: a.Filename, Caption: a.Caption, By: a.UploadedBy,
				At: oi.when(a.UploadedAt), Image: strings.HasPrefix(a.ContentType, "image/") && a.ContentType != "image/heic"})
		}
	}
	return out, nil
}

// thumbnail serves a JPEG thumbnail (w=128, 256 or 512) of a file.
func (cs *Console) thumbnail(c *fiber.Ctx) error {
	w, err := strconv.Atoi(c.Query("w", "256"))
	if err != nil {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/w", "w must be one of %v", attachment.ThumbWidths)
	}
	ctx, cancel := cs.callCtx()
	defer cancel()
	_, b, err := cs.cfg.Files.Thumbnail(ctx, actorOf(c), strings.Clone(c.Params("id")), w)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "image/jpeg")
	c.Set(fiber.HeaderCacheControl, "private, no-cache")
	return c.Send(b)
}

// original serves a file as uploaded, as a download: a PDF or a photo from
// a phone is never rendered in the console's origin.
func (cs *Console) original(c *fiber.Ctx) error {
	// The body streams after the handler returns; the call's budget covers
	// opening it, the stream ends with the request.
	ctx, cancel := cs.callCtx()
	a, rc, err := cs.cfg.Files.Content(ctx, actorOf(c), strings.Clone(c.Params("id")), 0, -1)
	if err != nil {
		cancel()
		return err
	}
	c.Set(fiber.HeaderContentType, a.ContentType)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+a.Filename+`"`)
	c.Set(fiber.HeaderCacheControl, "private, no-cache")
	c.Set(fiber.HeaderContentSecurityPolicy, "sandbox; default-src 'none'")
	return c.SendStream(closeAll{rc, cancel}, int(a.Size))
}

// closeAll closes a stream and ends its context.
type closeAll struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c closeAll) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
