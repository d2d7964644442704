package apptest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
)

// SHA256 is the hex SHA-256 of b, as an attachment's declaration names it.
func SHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Upload declares and sends a whole file over HTTP with tok, failing the
// test unless it completes.
func Upload(t testing.TB, base, tok string, decl map[string]any, b []byte) {
	t.Helper()
	decl["size"], decl["sha256"] = len(b), SHA256(b)
	var st struct {
		Status     string `json:"status"`
		Offset     int64  `json:"offset"`
		ChunkBytes int64  `json:"chunk_bytes"`
	}
	if code := Do(t, "POST", base+"/v1/attachments", tok, MustJSON(t, decl), &st); code != 200 {
		t.Fatalf("declare %v: %d", decl["id"], code)
	}
	for st.Status != "complete" {
		end := min(st.Offset+st.ChunkBytes, int64(len(b)))
		req, _ := http.NewRequest("PATCH", base+"/v1/attachments/"+decl["id"].(string)+"/content", bytes.NewReader(b[st.Offset:end]))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Upload-Offset", strconv.FormatInt(st.Offset, 10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("chunk at %d: %d %v", st.Offset, resp.StatusCode, err)
		}
	}
}
