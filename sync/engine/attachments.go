package engine

import "context"

// Attachments (docs/attachments.md) are documents of their own collection,
// written only by the server when an upload completes: no row of the write
// rules names the collection, so no device writes one. Their scope follows
// their parent's: the body carries the customer the parent hangs off, so
// stamp gives them the parent's customer keys and a reassignment's restamp
// moves them with their parent; the role keys a parent holds are granted to
// them (Engine.Grant) and carried over like an order's. The index keys below
// let the attachment service list a document's files and an organisation's
// without reading the feed of its scopes.

// CollAttachments holds attachment metadata; the bytes live in a blob store.
const CollAttachments = "attachments"

// IndexAttachments is the index key every attachment carries: the
// attachment service's sweep and usage count read it.
const IndexAttachments = "ix:attachments"

// AttachmentIndexKey is the index key of the attachments of one document.
func AttachmentIndexKey(parentCollection, parentID string) string {
	return attachmentIndexPrefix + parentCollection + "/" + parentID
}

const attachmentIndexPrefix = IndexPrefix + "att:"

// AttachmentIndexKeys returns an attachment's index keys; fields a device
// cannot write decide them, so every restamp agrees.
func AttachmentIndexKeys(body map[string]any) []string {
	pc, _ := body["parent_collection"].(string)
	pid, _ := body["parent_id"].(string)
	if pc == "" || pid == "" {
		return []string{IndexAttachments}
	}
	return []string{IndexAttachments, AttachmentIndexKey(pc, pid)}
}

// attachmentParent returns the document a live attachment belongs to.
func attachmentParent(d *Document) (DocRef, bool) {
	if d.Collection != CollAttachments || d.Deleted {
		return DocRef{}, false
	}
	body, err := decodeObject(d.Body)
	if err != nil {
		return DocRef{}, false
	}
	pc, _ := body["parent_collection"].(string)
	pid, _ := body["parent_id"].(string)
	return DocRef{Collection: pc, ID: pid}, pc != "" && pid != ""
}

// filesOf lists the attachments of docs, from the attachment index
// (attachments.go's keys), whatever the state of the store's sequence.
func (e *Engine) filesOf(ctx context.Context, org string, docs []DocRef) (map[DocRef][]DocRef, error) {
	out := map[DocRef][]DocRef{}
	for _, d := range docs {
		if d.Collection == CollAttachments {
			continue // a file has no files
		}
		refs, err := e.scopeRefs(ctx, org, AttachmentIndexKey(d.Collection, d.ID))
		if err != nil {
			return nil, err
		}
		out[d] = refs
	}
	return out, nil
}
