package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// checkpoint is the content of the opaque pull checkpoint. It is bound to the
// organisation and user so that a checkpoint cannot be replayed by someone
// else, and signed so that a device cannot move it.
type checkpoint struct {
	V    int    `json:"v"`
	Org  string `json:"o"`
	User string `json:"u"`
	Seq  int64  `json:"s"`
	// Read is the fingerprint of the read set the checkpoint was issued
	// for: when the caller's read set changes, the pull starts over.
	Read string `json:"k,omitempty"`
}

var b64 = base64.RawURLEncoding

func (e *Engine) sealCheckpoint(a Actor, seq int64, read string) string {
	payload, _ := json.Marshal(checkpoint{V: 1, Org: a.Org, User: a.User, Seq: seq, Read: read})
	return b64.EncodeToString(payload) + "." + b64.EncodeToString(e.mac(payload))
}

func (e *Engine) mac(payload []byte) []byte {
	h := hmac.New(sha256.New, e.checkKey)
	h.Write(payload)
	return h.Sum(nil)[:16]
}

// openCheckpoint returns the sequence a checkpoint stands for ("" is 0) and
// the fingerprint of the read set it was issued for.
func (e *Engine) openCheckpoint(a Actor, s string) (int64, string, error) {
	if s == "" {
		return 0, "", nil
	}
	bad := Errorf(KindInvalid, CodeBadCheckpoint, "/checkpoint", "checkpoint is not one this server issued to you; start again with an empty checkpoint")
	enc, sig, ok := strings.Cut(s, ".")
	if !ok || len(s) > 512 {
		return 0, "", bad
	}
	payload, err1 := b64.DecodeString(enc)
	mac, err2 := b64.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, e.mac(payload)) {
		return 0, "", bad
	}
	var c checkpoint
	if err := json.Unmarshal(payload, &c); err != nil || c.V != 1 || c.Org != a.Org || c.User != a.User || c.Seq < 0 {
		return 0, "", bad
	}
	return c.Seq, c.Read, nil
}
