package attachment

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	_ "image/png" // decoders for image.Decode
	"io"
	"slices"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"github.com/fieldsync/fieldsync/attachment/blob"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// ThumbWidths are the thumbnail widths the server makes; a fixed set keeps
// the cache bounded.
var ThumbWidths = []int{128, 256, 512}

// thumbable are the types the server decodes; HEIC and PDF have no
// decoder in Go's image packages, so their thumbnails are the device's job.
var thumbable = []string{"image/jpeg", "image/png", "image/webp"}

// Thumbnail returns a JPEG of the attachment scaled to width w (one of
// ThumbWidths; never wider than the original), authorised like Get. It is
// made on first request and kept beside the original. Thumbnails carry no
// metadata (no EXIF): they are encoded afresh from the pixels.
func (s *Service) Thumbnail(ctx context.Context, actor engine.Actor, id string, w int) (*Attachment, []byte, error) {
	if !slices.Contains(ThumbWidths, w) {
		return nil, nil, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/w", "w must be one of %v", ThumbWidths)
	}
	a, err := s.Get(ctx, actor, id)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(thumbable, a.ContentType) {
		return nil, nil, engine.Errorf(engine.KindNotFound, CodeNoThumbnail, "", "no thumbnails of %s files", a.ContentType)
	}
	key := thumbKey(actor.Org, a.SHA256, w)
	if b, err := s.readAll(ctx, key); err == nil {
		return a, b, nil
	} else if !errors.Is(err, blob.ErrNotFound) {
		return nil, nil, err
	}
	select { // a decoded photo takes tens of megabytes: a few at a time
	case s.thumbs <- struct{}{}:
		defer func() { <-s.thumbs }()
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	rc, err := s.cfg.Blobs.Get(ctx, blobKey(actor.Org, a.SHA256), 0, -1)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	b, err := MakeThumbnail(rc, w, s.cfg.Limits.MaxPixels)
	if err != nil {
		return nil, nil, err
	}
	if err := s.cfg.Blobs.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

func (s *Service) readAll(ctx context.Context, key string) ([]byte, error) {
	rc, err := s.cfg.Blobs.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// MakeThumbnail decodes an image and encodes it as a JPEG w pixels wide
// (or its own width when narrower). Images of more than maxPixels are
// refused before decoding, so a small file that claims a huge canvas
// cannot exhaust memory.
func MakeThumbnail(r io.Reader, w int, maxPixels int64) ([]byte, error) {
	var head bytes.Buffer
	cfg, _, err := image.DecodeConfig(io.TeeReader(r, &head))
	if err != nil {
		return nil, engine.Errorf(engine.KindNotFound, CodeNoThumbnail, "", "the image does not decode: %v", err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels || cfg.Width < 1 || cfg.Height < 1 {
		return nil, engine.Errorf(engine.KindNotFound, CodeNoThumbnail, "", "the image is %dx%d; thumbnails are made of at most %d pixels", cfg.Width, cfg.Height, maxPixels)
	}
	src, _, err := image.Decode(io.MultiReader(&head, r))
	if err != nil {
		return nil, engine.Errorf(engine.KindNotFound, CodeNoThumbnail, "", "the image does not decode: %v", err)
	}
	b := src.Bounds()
	w = min(w, b.Dx())
	h := max(1, b.Dy()*w/b.Dx())
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
	var out bytes.Buffer
	if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: 80}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
