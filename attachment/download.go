package attachment

import (
	"context"
	"io"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Content returns length bytes of a readable attachment from offset
// (length < 0: to the end), authorised like Get.
func (s *Service) Content(ctx context.Context, actor engine.Actor, id string, offset, length int64) (*Attachment, io.ReadCloser, error) {
	a, err := s.Get(ctx, actor, id)
	if err != nil {
		return nil, nil, err
	}
	if offset == a.Size || length == 0 {
		return a, io.NopCloser(eof{}), nil
	}
	rc, err := s.cfg.Blobs.Get(ctx, blobKey(actor.Org, a.SHA256), offset, length)
	if err != nil {
		return nil, nil, err
	}
	return a, rc, nil
}

type eof struct{}

func (eof) Read([]byte) (int, error) { return 0, io.EOF }

// Delete marks an attachment deleted: it leaves every device with the next
// pull, and its bytes go after the retention period. The uploader, a
// manager or an admin who reads the parent may delete it; deleting twice
// is not an error.
func (s *Service) Delete(ctx context.Context, actor engine.Actor, id string) error {
	a, err := s.Get(ctx, actor, id)
	if engine.ErrorCode(err) == CodeAttachmentDeleted {
		return nil
	}
	if err != nil {
		return err
	}
	if a.UploadedBy != actor.User && !actor.HasRole(fieldsales.RoleManager) && !actor.HasRole(fieldsales.RoleAdmin) {
		return engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "", "only the uploader, a manager or an admin deletes a file")
	}
	return s.markDeleted(ctx, actor.Org, id, actor.User)
}

// markDeleted records the deletion, as the server, only while the file is
// not deleted yet (deleted_at absent).
func (s *Service) markDeleted(ctx context.Context, org, id, by string) error {
	fields, err := toFields(map[string]string{"deleted_at": s.cfg.Now().UTC().Format(time.RFC3339Nano), "deleted_by": by})
	if err != nil {
		return err
	}
	outs, err := s.cfg.Engine.Upsert(ctx, engine.Actor{Org: org, User: by, Roles: []string{fieldsales.RoleAdmin}}, "attachments",
		[]engine.UpsertDoc{{Collection: engine.CollAttachments, ID: id, Fields: fields, Expect: &engine.Expect{Field: "deleted_at", In: []string{""}}}})
	if err != nil {
		return err
	}
	if o := outs[0]; o.Status == engine.StatusRejected && o.Error.Code != engine.CodePreconditionFailed {
		return engine.Errorf(engine.KindInternal, engine.CodeInternal, "", "mark %s deleted: %s", id, o.Error.Message)
	}
	return nil
}
