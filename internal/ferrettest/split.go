package ferrettest

import (
	"encoding/binary"
	"fmt"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// maxUpdates is the most statements of one update command FerretDB is
// given; the proxy splits a longer command into commands of this many.
//
// FerretDB 1.24 (SQLite backend, internal/handler/msg_update.go) opens a
// query per statement of an update command and closes them only when the
// whole command returns (a defer inside its loop over the statements), and a
// query that found its document stays open, holding one of the 100
// connections FerretDB's SQLite pool has per database
// (internal/backends/sqlite/metadata/pool/opendb.go). Each modified document
// is then written in a transaction that needs a connection of its own. The
// 100th matching statement of one command therefore waits for a connection
// that only the command itself can release: it never returns, and every
// later command on that database waits behind it, whatever its timeout (the
// driver giving up does not cancel it). A bulk write of 100 updates or
// replaces of existing documents (a push updating 100 documents, feed rows
// restamped under new scopes) stalls the database for good. 16 keeps the
// connections held by one command low enough that several bulk writers at
// once (plain Start does not serialise writers) stay far from the pool's 100.
const maxUpdates = 16

// section is an OP_MSG document sequence (kind 1).
type section struct {
	id   string
	docs []bson.Raw
}

// splitUpdate returns req cut into update commands of at most maxUpdates
// statements, or nil when req is not an update command with more.
// Requests with a checksum or that expect no reply pass unchanged.
func splitUpdate(req []byte) [][]byte {
	if opCode(req) != opMsg || len(req) < headerLen+4 {
		return nil
	}
	if flags := binary.LittleEndian.Uint32(req[headerLen:]); flags != 0 {
		return nil // checksum, moreToCome or exhaustAllowed: not what the driver sends for writes
	}
	body, seqs, ok := sections(req)
	if !ok {
		return nil
	}
	first, err := body.IndexErr(0)
	if err != nil || first.Key() != "update" {
		return nil
	}
	var stmts []bson.Raw
	for _, s := range seqs {
		if s.id == "updates" {
			stmts = append(stmts, s.docs...)
		}
	}
	if arr, ok := body.Lookup("updates").ArrayOK(); ok {
		vals, err := arr.Values()
		if err != nil {
			return nil
		}
		for _, v := range vals {
			d, ok := v.DocumentOK()
			if !ok {
				return nil
			}
			stmts = append(stmts, d)
		}
	}
	if len(stmts) <= maxUpdates {
		return nil
	}
	// The body without its statements: each chunk carries its own as a
	// document sequence, as the driver sends them.
	elems, err := body.Elements()
	if err != nil {
		return nil
	}
	var rest bson.D
	for _, e := range elems {
		if e.Key() != "updates" {
			rest = append(rest, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	restBody, err := bson.Marshal(rest)
	if err != nil {
		return nil
	}
	var out [][]byte
	for i := 0; i < len(stmts); i += maxUpdates {
		out = append(out, opMsgRequest(req[4:8], restBody, "updates", stmts[i:min(i+maxUpdates, len(stmts))]))
	}
	return out
}

// sections parses an OP_MSG without checksum into its body and sequences.
func sections(msg []byte) (body bson.Raw, seqs []section, ok bool) {
	b := msg[headerLen+4:]
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		if len(b) < 4 {
			return nil, nil, false
		}
		size := int(int32(binary.LittleEndian.Uint32(b[:4])))
		if size < 5 || size > len(b) {
			return nil, nil, false
		}
		switch kind {
		case 0:
			body = bson.Raw(b[:size])
			if body.Validate() != nil {
				return nil, nil, false
			}
		case 1:
			s, ok := parseSequence(b[4:size])
			if !ok {
				return nil, nil, false
			}
			seqs = append(seqs, s)
		default:
			return nil, nil, false
		}
		b = b[size:]
	}
	return body, seqs, body != nil
}

func parseSequence(b []byte) (section, bool) {
	var s section
	end := 0
	for end < len(b) && b[end] != 0 {
		end++
	}
	if end == len(b) {
		return s, false
	}
	s.id, b = string(b[:end]), b[end+1:]
	for len(b) > 0 {
		if len(b) < 4 {
			return s, false
		}
		n := int(int32(binary.LittleEndian.Uint32(b[:4])))
		if n < 5 || n > len(b) || bson.Raw(b[:n]).Validate() != nil {
			return s, false
		}
		s.docs, b = append(s.docs, bson.Raw(b[:n])), b[n:]
	}
	return s, true
}

// opMsgRequest builds an OP_MSG of body and one document sequence, with
// the request id given (4 bytes, little-endian).
func opMsgRequest(requestID []byte, body []byte, id string, docs []bson.Raw) []byte {
	seqLen := 4 + len(id) + 1
	for _, d := range docs {
		seqLen += len(d)
	}
	msg := make([]byte, headerLen, headerLen+4+1+len(body)+1+seqLen)
	copy(msg[4:8], requestID)
	binary.LittleEndian.PutUint32(msg[12:16], opMsg)
	msg = binary.LittleEndian.AppendUint32(msg, 0) // flags
	msg = append(msg, 0)
	msg = append(msg, body...)
	msg = append(msg, 1)
	msg = binary.LittleEndian.AppendUint32(msg, uint32(seqLen))
	msg = append(msg, id...)
	msg = append(msg, 0)
	for _, d := range docs {
		msg = append(msg, d...)
	}
	binary.LittleEndian.PutUint32(msg[0:4], uint32(len(msg)))
	return msg
}

// splitRoundTrip sends the chunks of an update command one after the
// other and answers the client with the reply FerretDB gives to the whole
// command when it does answer: n and nModified summed, upserted numbered in
// the order of the upserts (FerretDB's "index" counts upserts, not
// statements). FerretDB stops a command at its first failing statement,
// ordered or not, and answers with that failure alone: so does the split,
// at the first chunk whose reply is not a plain success.
func splitRoundTrip(req []byte, chunks [][]byte, client, server io.ReadWriter) error {
	var n, modified int64
	var upserted bson.A
	for _, chunk := range chunks {
		if _, err := server.Write(chunk); err != nil {
			return err
		}
		reply, err := readMessage(server)
		if err != nil {
			return err
		}
		if opCode(reply) != opMsg || binary.LittleEndian.Uint32(reply[headerLen:]) != 0 {
			return fmt.Errorf("ferrettest proxy: unexpected reply to an update")
		}
		body, _, ok := sections(reply)
		if !ok {
			return fmt.Errorf("ferrettest proxy: unreadable reply to an update")
		}
		okv, _ := body.Lookup("ok").AsFloat64OK()
		if _, failed := body.Lookup("writeErrors").ArrayOK(); okv != 1 || failed {
			return writeReply(client, req, body)
		}
		n += intOf(body.Lookup("n"))
		modified += intOf(body.Lookup("nModified"))
		upserted = append(upserted, reindexed(body.Lookup("upserted"), int32(len(upserted)))...)
	}
	merged := bson.D{{Key: "n", Value: int32(n)}, {Key: "nModified", Value: int32(modified)}}
	if len(upserted) > 0 {
		merged = append(merged, bson.E{Key: "upserted", Value: upserted})
	}
	merged = append(merged, bson.E{Key: "ok", Value: 1.0})
	out, err := bson.Marshal(merged)
	if err != nil {
		return err
	}
	return writeReply(client, req, out)
}

func intOf(v bson.RawValue) int64 {
	if i, ok := v.AsInt64OK(); ok {
		return i
	}
	return 0
}

// reindexed returns the documents of an array of {index, ...} with offset
// added to each index.
func reindexed(v bson.RawValue, offset int32) bson.A {
	arr, ok := v.ArrayOK()
	if !ok {
		return nil
	}
	vals, _ := arr.Values()
	var out bson.A
	for _, e := range vals {
		doc, ok := e.DocumentOK()
		if !ok {
			continue
		}
		elems, _ := doc.Elements()
		d := bson.D{}
		for _, el := range elems {
			if el.Key() == "index" {
				d = append(d, bson.E{Key: "index", Value: int32(intOf(el.Value())) + offset})
				continue
			}
			d = append(d, bson.E{Key: el.Key(), Value: el.Value()})
		}
		out = append(out, d)
	}
	return out
}

// writeReply answers req with an OP_MSG of body alone.
func writeReply(w io.Writer, req []byte, body []byte) error {
	msg := make([]byte, headerLen, headerLen+5+len(body))
	copy(msg[8:12], req[4:8]) // responseTo: the client's request id
	binary.LittleEndian.PutUint32(msg[12:16], opMsg)
	msg = binary.LittleEndian.AppendUint32(msg, 0)
	msg = append(msg, 0)
	msg = append(msg, body...)
	binary.LittleEndian.PutUint32(msg[0:4], uint32(len(msg)))
	_, err := w.Write(msg)
	return err
}
