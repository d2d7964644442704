package attachment_test

// Thumbnail time for a phone photo, and the service's upload path without
// HTTP. Figures in docs/benchmarks.md:
//
//	go test ./attachment -run '^$' -bench . -benchtime 20x -count 3

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg"
	"testing"

	"github.com/fieldsync/fieldsync/attachment"
	"github.com/fieldsync/fieldsync/internal/testphoto"
)

// BenchmarkThumbnail makes a 256-pixel thumbnail of a 2 MiB JPEG, next to
// decoding that JPEG alone (most of the cost).
func BenchmarkThumbnail(b *testing.B) {
	photo := testphoto.JPEG(1, 2<<20)
	cfg, _, _ := image.DecodeConfig(bytes.NewReader(photo))
	b.Logf("photo: %d bytes, %dx%d", len(photo), cfg.Width, cfg.Height)
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := image.Decode(bytes.NewReader(photo)); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, w := range attachment.ThumbWidths {
		b.Run(fmt.Sprintf("w=%d", w), func(b *testing.B) {
			var out []byte
			for b.Loop() {
				var err error
				if out, err = attachment.MakeThumbnail(bytes.NewReader(photo), w, 50_000_000); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(out)), "thumb-bytes")
		})
	}
}
