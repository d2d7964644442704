// Package testphoto makes real JPEG files of a chosen size for tests and
// benchmarks of attachments: noise does not compress, so a photo of n bytes
// is about as large as a phone's. For tests only.
package testphoto

import (
	"bytes"
	"image"
	"image/jpeg"
	"math/rand/v2"
)

// JPEG returns a JPEG of at least n bytes made of seeded noise: the same
// seed and size give the same bytes.
func JPEG(seed uint64, n int) []byte {
	rnd := rand.New(rand.NewPCG(seed, 1))
	side := 64
	for {
		img := image.NewRGBA(image.Rect(0, 0, side, side*3/4))
		for i := range img.Pix {
			img.Pix[i] = byte(rnd.IntN(256))
		}
		var b bytes.Buffer
		jpeg.Encode(&b, img, &jpeg.Options{Quality: 95})
		if b.Len() >= n {
			return b.Bytes()
		}
		side = side * 3 / 2
	}
}
