package app_test

// Attachment upload throughput through real HTTP (the Go client, the
// server, the disk blob store, SQLite), next to writing the same bytes to
// files with fsync in the same run, and the heap while uploading. Figures
// in docs/benchmarks.md:
//
//	go test ./app -run '^$' -bench 'Attachment|RawFiles' -benchtime 1x -count 3

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/internal/testphoto"
)

const benchPhotos, benchPhotoBytes = 100, 2 << 20

// benchPhotoFiles writes the photos of one run to dir.
func benchPhotoFiles(b *testing.B, dir string) []string {
	b.Helper()
	one := testphoto.JPEG(1, benchPhotoBytes)[:benchPhotoBytes]
	var paths []string
	for i := range benchPhotos {
		p := filepath.Join(dir, fmt.Sprintf("photo-%03d.jpg", i))
		// Distinct bytes per photo (stored once each), still a JPEG.
		buf := append([]byte(nil), one...)
		copy(buf[len(buf)-8:], fmt.Sprintf("%08d", i))
		if err := os.WriteFile(p, buf, 0o600); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// heapNow is the live heap now.
func heapNow() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapPeak samples the live heap every few milliseconds until stopped.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// BenchmarkAttachmentUpload uploads 100 photos of 2 MiB from one phone
// (chunks of 1 MiB, the default) and reports MB/s and the peak live heap of
// the process (server and phone together).
func BenchmarkAttachmentUpload(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		w := &accWorld{T: b, Server: startServer(b, "", fastSignIn)}
		w.Server.Customer(b, "acme", "c-1", "rep-1")
		rep := w.Token("acme", "rep-1")
		// Ten notes of ten photos: a document holds at most 20 files.
		var notes []map[string]any
		for i := range 10 {
			notes = append(notes, mCreate(fmt.Sprintf("m-n%d", i), "customer_notes", fmt.Sprintf("n-%d", i), map[string]any{"customer_id": "c-1", "text": "shelves"}))
		}
		w.MustApply(rep, "phone-0", notes)
		paths := benchPhotoFiles(b, b.TempDir())
		phone, err := client.New(client.Config{BaseURL: w.Server.URL, Token: client.StaticToken(rep), DeviceID: "phone-1",
			HTTPClient: &http.Client{Timeout: time.Minute}})
		if err != nil {
			b.Fatal(err)
		}
		for i, p := range paths {
			if _, err := phone.Attach(client.FileSpec{ParentCollection: "customer_notes", ParentID: fmt.Sprintf("n-%d", i%10), Path: p, ContentType: "image/jpeg"}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		before := heapNow()
		peak := heapPeak()
		b.StartTimer()
		start := time.Now()
		rep2, err := phone.UploadFiles(context.Background())
		el := time.Since(start)
		b.StopTimer()
		p := peak()
		if err != nil || len(rep2.Uploaded) != benchPhotos {
			b.Fatalf("uploaded %d: %v", len(rep2.Uploaded), err)
		}
		b.ReportMetric(float64(benchPhotos*benchPhotoBytes)/el.Seconds()/1e6, "MB/s")
		b.ReportMetric(el.Seconds()*1000/benchPhotos, "ms/photo")
		b.ReportMetric(float64(before)/(1<<20), "heap-before-MiB")
		b.ReportMetric(float64(p)/(1<<20), "peak-heap-MiB")
		b.StartTimer()
	}
}

// BenchmarkRawFiles writes the same 100 photos of 2 MiB to files with an
// fsync each: the floor under the upload above.
func BenchmarkRawFiles(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		src := benchPhotoFiles(b, b.TempDir())
		dst := b.TempDir()
		b.StartTimer()
		start := time.Now()
		for i, p := range src {
			data, err := os.ReadFile(p)
			if err != nil {
				b.Fatal(err)
			}
			f, err := os.Create(filepath.Join(dst, fmt.Sprint(i)))
			if err != nil {
				b.Fatal(err)
			}
			f.Write(data)
			f.Sync()
			f.Close()
		}
		el := time.Since(start)
		b.ReportMetric(float64(benchPhotos*benchPhotoBytes)/el.Seconds()/1e6, "MB/s")
		b.ReportMetric(el.Seconds()*1000/benchPhotos, "ms/photo")
	}
}
