package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Files attached to documents (docs/attachments.md) are queued like
// mutations: Attach records the file in the saved state, UploadFiles sends
// the queue in resumable chunks. A chunk cut off by the network is sent
// again from where the server says the upload stands, so a photo dropped at
// 90% continues from 90%.

// FileSpec is a file to attach to a document.
type FileSpec struct {
	ParentCollection string
	ParentID         string
	// Path is the file on the device; it must stay there, unchanged, until
	// the upload is done.
	Path        string
	ContentType string // image/jpeg, image/png, image/webp, image/heic, application/pdf
	// Filename is what the server shows (default: Path's base name); the
	// server takes A-Z a-z 0-9 space . _ - only.
	Filename string
	Caption  string
	TakenAt  string // RFC 3339
	Location *FileLocation
}

// FileLocation is where a photo was taken.
type FileLocation struct {
	Lat       float64  `json:"lat"`
	Lng       float64  `json:"lng"`
	AccuracyM *float64 `json:"accuracy_m,omitempty"`
}

// FileDeclaration is the wire form of a file the server is told about.
type FileDeclaration struct {
	ID               string        `json:"id"`
	ParentCollection string        `json:"parent_collection"`
	ParentID         string        `json:"parent_id"`
	Filename         string        `json:"filename"`
	ContentType      string        `json:"content_type"`
	Size             int64         `json:"size"`
	SHA256           string        `json:"sha256"`
	Caption          string        `json:"caption,omitempty"`
	TakenAt          string        `json:"taken_at,omitempty"`
	Location         *FileLocation `json:"location,omitempty"`
}

// PendingFile is a file waiting to be uploaded.
type PendingFile struct {
	Declaration FileDeclaration `json:"declaration"`
	Path        string          `json:"path"`
	Attempts    int             `json:"attempts"`
}

// fileStatus is the server's answer about an upload.
type fileStatus struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Offset     int64  `json:"offset"`
	Size       int64  `json:"size"`
	ChunkBytes int64  `json:"chunk_bytes"`
}

// Attach queues a file for upload and returns the attachment's id, which
// a document may name at once (a proof of delivery). The file is hashed
// here, reading it once in small pieces.
func (c *Client) Attach(spec FileSpec) (string, error) {
	if err := checkIDs(spec.ParentCollection, spec.ParentID); err != nil {
		return "", err
	}
	f, err := os.Open(spec.Path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("client: hash %s: %w", spec.Path, err)
	}
	name := spec.Filename
	if name == "" {
		name = filepath.Base(spec.Path)
	}
	d := FileDeclaration{ID: c.cfg.NewID(), ParentCollection: spec.ParentCollection, ParentID: spec.ParentID, Filename: name,
		ContentType: spec.ContentType, Size: size, SHA256: hex.EncodeToString(h.Sum(nil)), Caption: spec.Caption,
		TakenAt: spec.TakenAt, Location: spec.Location}
	if err := c.lock(); err != nil {
		return "", err
	}
	defer c.mu.Unlock()
	c.state.Files = append(c.state.Files, PendingFile{Declaration: d, Path: spec.Path})
	if err := c.saveLocked(); err != nil {
		return "", err
	}
	return d.ID, nil
}

// PendingFiles returns the files waiting to be uploaded.
func (c *Client) PendingFiles() []PendingFile {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.state.Files)
}

// FileReport says what UploadFiles did.
type FileReport struct {
	Uploaded []string // ids now stored on the server
	// Waiting are files whose document the server does not show this user
	// yet (not pushed, or not theirs): they stay queued.
	Waiting []string
	// Rejected are files the server refused for good (a limit, a type, a
	// hash that does not match): they leave the queue, with the reason.
	Rejected map[string]*RequestError
	Chunks   int // chunks sent, retries included
}

// UploadFiles uploads the queued files one after the other. Push the
// documents they belong to first. Transient failures are retried like a
// push; it returns early only when ctx ends or retries run out, leaving
// the rest queued.
func (c *Client) UploadFiles(ctx context.Context) (FileReport, error) {
	c.net.Lock()
	defer c.net.Unlock()
	rep := FileReport{Rejected: map[string]*RequestError{}}
	for _, p := range c.PendingFiles() {
		err := c.uploadFile(ctx, p, &rep)
		var re *RequestError
		switch {
		case err == nil:
			rep.Uploaded = append(rep.Uploaded, p.Declaration.ID)
		case errors.As(err, &re) && re.Status == http.StatusNotFound && re.Body.Code == "not_found":
			rep.Waiting = append(rep.Waiting, p.Declaration.ID)
			continue
		case errors.As(err, &re) && re.Status >= 400 && re.Status < 500 && re.Status != http.StatusTooManyRequests:
			rep.Rejected[p.Declaration.ID] = re
		default:
			return rep, err
		}
		if err := c.dropFile(p.Declaration.ID); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (c *Client) dropFile(id string) error {
	if err := c.lock(); err != nil {
		return err
	}
	defer c.mu.Unlock()
	c.state.Files = slices.DeleteFunc(c.state.Files, func(p PendingFile) bool { return p.Declaration.ID == id })
	return c.saveLocked()
}

// uploadFile declares one file and sends its chunks from wherever the
// server stands.
func (c *Client) uploadFile(ctx context.Context, p PendingFile, rep *FileReport) error {
	d := p.Declaration
	var st fileStatus
	if _, err := c.call(ctx, http.MethodPost, c.base+"/v1/attachments", func() ([]byte, error) { return json.Marshal(d) }, &st); err != nil {
		return err
	}
	f, err := os.Open(p.Path)
	if err != nil && st.Status != "complete" {
		return &RequestError{Status: http.StatusGone, Body: engine.ErrorBody{Code: "file_missing", Message: err.Error()}}
	}
	if f != nil {
		defer f.Close()
	}
	chunkURL := c.base + "/v1/attachments/" + url.PathEscape(d.ID) + "/content"
	buf := make([]byte, 0, max(st.ChunkBytes, 1))
	for st.Status != "complete" {
		next := func() (request, error) {
			n := min(st.ChunkBytes, st.Size-st.Offset)
			buf = buf[:n]
			if _, err := f.ReadAt(buf, st.Offset); err != nil && !errors.Is(err, io.EOF) {
				return request{}, fmt.Errorf("client: read %s: %w", p.Path, err)
			}
			rep.Chunks++
			return request{method: http.MethodPatch, url: chunkURL, body: buf, contentType: "application/octet-stream",
				header: map[string]string{"Upload-Offset": strconv.FormatInt(st.Offset, 10)}}, nil
		}
		var got fileStatus
		_, err := c.callRequest(ctx, next, &got)
		var re *RequestError
		if errors.As(err, &re) && re.Body.Code == "upload_offset_mismatch" {
			// A chunk whose reply was lost, or a session the server
			// discarded: go on from where the server stands.
			off, perr := strconv.ParseInt(re.Header.Get("Upload-Offset"), 10, 64)
			if perr != nil || off < 0 || off > st.Size {
				return err
			}
			st.Offset = off
			continue
		}
		if err != nil {
			return err
		}
		st = got
	}
	return nil
}
