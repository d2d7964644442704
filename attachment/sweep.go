package attachment

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/attachment/blob"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Swept counts what one sweep did.
type Swept struct {
	Orphaned  int // attachments marked deleted because their document was
	Purged    int // hashes whose bytes (and thumbnails) were removed
	Abandoned int // upload sessions removed
}

// Sweep collects what nobody can reach any more, for each organisation:
// attachments of deleted documents are marked deleted; the bytes of a hash
// that only deleted attachments (or none, after a crash between storing
// and recording) refer to are removed once the newest of those deletions,
// and the bytes themselves, are older than the retention period; upload
// sessions untouched for longer than Config.Abandoned, and finished
// sessions, are removed. Every step is idempotent, so instances may sweep
// at once.
func (s *Service) Sweep(ctx context.Context, orgs []string) (Swept, error) {
	var total Swept
	active, err := s.sweepSessions(&total)
	if err != nil {
		return total, err
	}
	for _, org := range orgs {
		if err := s.sweepOrg(ctx, org, active, &total); err != nil {
			return total, err
		}
	}
	return total, nil
}

// sweepSessions removes abandoned and finished sessions and returns the
// hashes of those still open, whose bytes must stay.
func (s *Service) sweepSessions(total *Swept) (map[string]bool, error) {
	active := map[string]bool{}
	entries, err := os.ReadDir(s.cfg.Staging)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		path := filepath.Join(s.cfg.Staging, name)
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // removed meanwhile
		}
		var ss session
		if json.Unmarshal(raw, &ss) != nil {
			continue
		}
		touched := ss.Created
		if st, err := os.Stat(strings.TrimSuffix(path, ".json") + ".part"); err == nil && st.ModTime().After(touched) {
			touched = st.ModTime()
		}
		if ss.Done && now.Sub(touched) > time.Hour || !ss.Done && now.Sub(touched) > s.cfg.Abandoned {
			unlock := s.lock(ss.Org, ss.Decl.ID)
			s.discard(ss.Org, ss.Decl.ID)
			unlock()
			if !ss.Done {
				total.Abandoned++
			}
			continue
		}
		active[blobKey(ss.Org, ss.Decl.SHA256)] = true
	}
	return active, nil
}

func (s *Service) sweepOrg(ctx context.Context, org string, active map[string]bool, total *Swept) error {
	var all []Attachment
	if err := s.scan(ctx, org, engine.IndexAttachments, func(a Attachment) error { all = append(all, a); return nil }); err != nil {
		return err
	}
	// Attachments whose document is gone.
	var parents []engine.DocRef
	for _, a := range all {
		if a.DeletedAt == "" {
			parents = append(parents, a.Parent())
		}
	}
	if len(parents) > 0 {
		got, err := s.cfg.Docs.Get(ctx, org, parents)
		if err != nil {
			return err
		}
		for i := range all {
			a := &all[i]
			if p := got[a.Parent()]; a.DeletedAt == "" && (p == nil || p.Deleted) {
				if err := s.markDeleted(ctx, org, a.ID, "fieldsync"); err != nil {
					return err
				}
				a.DeletedAt = s.cfg.Now().UTC().Format(time.RFC3339Nano)
				total.Orphaned++
			}
		}
	}
	live := map[string]bool{}
	gone := map[string]time.Time{} // hash -> newest deletion
	byHash := map[string][]string{}
	for _, a := range all {
		byHash[a.SHA256] = append(byHash[a.SHA256], a.ID)
		if a.DeletedAt == "" {
			live[a.SHA256] = true
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, a.DeletedAt)
		if err != nil {
			return err
		}
		if t.After(gone[a.SHA256]) {
			gone[a.SHA256] = t
		}
	}
	now := s.cfg.Now()
	prefix := orgDir(org) + "/"
	var purge []string
	err := s.cfg.Blobs.List(ctx, prefix, func(i blob.Info) error {
		sha := strings.TrimPrefix(i.Key, prefix)
		if strings.Contains(sha, "/") || live[sha] || active[i.Key] || now.Sub(i.Modified) < s.cfg.Retention {
			return nil
		}
		if t, ok := gone[sha]; ok && now.Sub(t) < s.cfg.Retention {
			return nil
		}
		purge = append(purge, sha)
		return nil
	})
	if err != nil {
		return err
	}
	for _, sha := range purge {
		for _, w := range ThumbWidths {
			if err := s.cfg.Blobs.Delete(ctx, thumbKey(org, sha, w)); err != nil {
				return err
			}
		}
		if err := s.cfg.Blobs.Delete(ctx, blobKey(org, sha)); err != nil {
			return err
		}
		total.Purged++
		for _, id := range byHash[sha] {
			if err := s.markPurged(ctx, org, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// markPurged records on a deleted attachment that its bytes are gone.
func (s *Service) markPurged(ctx context.Context, org, id string) error {
	fields, err := toFields(map[string]string{"purged_at": s.cfg.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		return err
	}
	outs, err := s.cfg.Engine.Upsert(ctx, engine.Actor{Org: org, User: "fieldsync", Roles: []string{fieldsales.RoleAdmin}}, "attachments",
		[]engine.UpsertDoc{{Collection: engine.CollAttachments, ID: id, Fields: fields, Expect: &engine.Expect{Field: "purged_at", In: []string{""}}}})
	if err != nil {
		return err
	}
	if o := outs[0]; o.Status == engine.StatusRejected && o.Error.Code != engine.CodePreconditionFailed {
		return errors.New("attachment: mark purged " + id + ": " + o.Error.Message)
	}
	return nil
}
