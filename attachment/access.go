package attachment

import (
	"context"
	"slices"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// parent returns the parent document when actor may read it. A missing
// document, a deleted one and another rep's or organisation's look alike.
func (s *Service) parent(ctx context.Context, actor engine.Actor, ref engine.DocRef) (*engine.Document, error) {
	got, err := s.cfg.Engine.Visible(ctx, actor, []engine.DocRef{ref})
	if err != nil {
		return nil, err
	}
	d := got[ref]
	if d == nil {
		return nil, engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "/parent_id", "no document %s", ref)
	}
	return d, nil
}

// stored returns the attachment document id of org, nil when none.
func (s *Service) stored(ctx context.Context, org, id string) (*Attachment, error) {
	ref := engine.DocRef{Collection: engine.CollAttachments, ID: id}
	got, err := s.cfg.Docs.Get(ctx, org, []engine.DocRef{ref})
	if err != nil {
		return nil, err
	}
	d := got[ref]
	if d == nil || d.Deleted {
		return nil, nil
	}
	m, err := decodeMeta(d.Body)
	if err != nil {
		return nil, err
	}
	return &Attachment{ID: id, Version: d.Version, Meta: m}, nil
}

// Get returns the attachment when actor may read its parent; whoever may
// not gets not_found, exactly as for an id that does not exist.
func (s *Service) Get(ctx context.Context, actor engine.Actor, id string) (*Attachment, error) {
	a, err := s.stored(ctx, actor.Org, id)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, notFound(id)
	}
	if _, err := s.parent(ctx, actor, a.Parent()); err != nil {
		if engine.ErrorKind(err) == engine.KindNotFound {
			return nil, notFound(id)
		}
		return nil, err
	}
	if a.DeletedAt != "" {
		return nil, engine.Errorf(engine.KindNotFound, CodeAttachmentDeleted, "", "attachment %s was deleted", id)
	}
	return a, nil
}

// Status answers where an upload stands: the file once complete (for
// whoever may read it), the offset reached for the uploader meanwhile.
func (s *Service) Status(ctx context.Context, actor engine.Actor, id string) (Status, error) {
	a, err := s.Get(ctx, actor, id)
	if err == nil {
		return s.complete(a), nil
	}
	if engine.ErrorKind(err) != engine.KindNotFound {
		return Status{}, err
	}
	defer s.lock(actor.Org, id)()
	ss, serr := s.loadSession(actor.Org, id)
	if serr != nil {
		return Status{}, serr
	}
	if ss == nil || ss.User != actor.User || ss.Done {
		return Status{}, err
	}
	off, serr := s.received(actor.Org, id)
	if serr != nil {
		return Status{}, serr
	}
	return s.uploading(ss.Decl, off), nil
}

// List returns the live files of a document actor may read, oldest first.
func (s *Service) List(ctx context.Context, actor engine.Actor, parent engine.DocRef) ([]Attachment, error) {
	if _, err := s.parent(ctx, actor, parent); err != nil {
		return nil, err
	}
	var out []Attachment
	err := s.scan(ctx, actor.Org, engine.AttachmentIndexKey(parent.Collection, parent.ID), func(a Attachment) error {
		if a.DeletedAt == "" && a.Parent() == parent {
			out = append(out, a)
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b Attachment) int {
		if a.UploadedAt != b.UploadedAt {
			if a.UploadedAt < b.UploadedAt {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, err
}

// scan calls fn for every attachment document under an index key.
func (s *Service) scan(ctx context.Context, org, key string, fn func(Attachment) error) error {
	var after int64
	for {
		pg, err := s.cfg.Docs.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{key}, After: after, Limit: 1000, MaxBytes: 4 << 20})
		if err != nil {
			return err
		}
		if pg.Compacted {
			return engine.Errorf(engine.KindUnavailable, engine.CodeUnavailable, "", "the attachment index was compacted meanwhile; retry")
		}
		for _, c := range pg.Changes {
			if c.Deleted || c.Evicted || c.Collection != engine.CollAttachments {
				continue
			}
			m, err := decodeMeta(c.Body)
			if err != nil {
				return err
			}
			if err := fn(Attachment{ID: c.ID, Version: c.Version, Meta: m}); err != nil {
				return err
			}
		}
		if !pg.More || pg.Through <= after {
			return nil
		}
		after = pg.Through
	}
}

// checkRoom refuses a file that would pass the limits of its document or
// its organisation. Bytes shared by files with the same hash count once
// for the organisation, as they are stored once.
func (s *Service) checkRoom(ctx context.Context, org string, parent engine.DocRef, id string, size int64) error {
	l := s.cfg.Limits
	n, bytes := 1, size
	err := s.scan(ctx, org, engine.AttachmentIndexKey(parent.Collection, parent.ID), func(a Attachment) error {
		if a.DeletedAt == "" && a.ID != id && a.Parent() == parent {
			n++
			bytes += a.Size
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n > l.MaxPerDocument || bytes > l.MaxDocumentBytes {
		return engine.Errorf(engine.KindTooLarge, CodeDocumentFull, "/parent_id",
			"a document holds at most %d files and %d bytes; %s would hold %d files and %d bytes", l.MaxPerDocument, l.MaxDocumentBytes, parent, n, bytes)
	}
	used, err := s.usage(ctx, org)
	if err != nil {
		return err
	}
	if used+size > l.MaxOrgBytes {
		return engine.Errorf(engine.KindTooLarge, CodeOrgStorageFull, "/size",
			"the organisation stores %d of its %d bytes; this file needs %d more", used, l.MaxOrgBytes, size)
	}
	return nil
}

// usage is the bytes an organisation's live files hold, each hash once.
func (s *Service) usage(ctx context.Context, org string) (int64, error) {
	seen := map[string]bool{}
	var used int64
	err := s.scan(ctx, org, engine.IndexAttachments, func(a Attachment) error {
		if a.DeletedAt == "" && !seen[a.SHA256] {
			seen[a.SHA256] = true
			used += a.Size
		}
		return nil
	})
	return used, err
}
