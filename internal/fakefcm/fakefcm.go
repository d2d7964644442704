// Package fakefcm is a fake Firebase Cloud Messaging HTTP v1 server on
// loopback, for tests: it records every send request (the decoded message)
// and answers as FCM does, 200 by default or what a test scripted per
// token: 404 UNREGISTERED, 400 INVALID_ARGUMENT, 429 QUOTA_EXCEEDED and
// 503 UNAVAILABLE (with Retry-After), with bodies shaped like FCM's
// (google.rpc.Status with a google.firebase.fcm.v1.FcmError detail).
package fakefcm

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Answer is one scripted reply.
type Answer struct {
	Status     int    // HTTP status; 0 or 200 is success
	RetryAfter string // the Retry-After header, when set
}

// Canned answers.
var (
	Unregistered    = Answer{Status: http.StatusNotFound}
	InvalidArgument = Answer{Status: http.StatusBadRequest}
)

// QuotaExceeded is a 429 with Retry-After seconds.
func QuotaExceeded(seconds int) Answer {
	return Answer{Status: http.StatusTooManyRequests, RetryAfter: strconv.Itoa(seconds)}
}

// Unavailable is a 503 with Retry-After seconds. The Admin SDK retries a 503
// itself when Retry-After is at most two minutes (sleeping), so tests that
// want the answer to reach the caller at once use a longer one.
func Unavailable(seconds int) Answer {
	return Answer{Status: http.StatusServiceUnavailable, RetryAfter: strconv.Itoa(seconds)}
}

// Request is one recorded send.
type Request struct {
	Project string
	Token   string
	Auth    string          // the Authorization header
	Message json.RawMessage // the "message" object as sent
	Status  int             // what the fake answered
	At      time.Time
}

// Server is a running fake.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []Request
	scripts  map[string][]Answer // per token, consumed in order; the last one repeats
	sent     int
	waiters  []chan struct{}
	tokens   int
	holds    map[string]chan struct{}
	held     int
	delay    time.Duration
}

// SetDelay makes every send answer after d, as a distant FCM does.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Start starts a fake on 127.0.0.1; Close stops it.
func Start() *Server {
	s := &Server{scripts: map[string][]Answer{}, holds: map[string]chan struct{}{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	return s
}

// URL is the base URL to give the Admin SDK (option.WithEndpoint).
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Script makes the next sends to token answer as given, in order; the last
// answer repeats. Script(token) with no answers restores success.
func (s *Server) Script(token string, answers ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(answers) == 0 {
		delete(s.scripts, token)
		return
	}
	s.scripts[token] = answers
}

// Requests returns every request so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Delivered returns the requests answered 200.
func (s *Server) Delivered() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Status == http.StatusOK {
			out = append(out, r)
		}
	}
	return out
}

// WaitDelivered blocks until at least n sends were answered 200 or the
// timeout passes, and reports whether they were.
func (s *Server) WaitDelivered(n int, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		if s.sent >= n {
			s.mu.Unlock()
			return true
		}
		ch := make(chan struct{})
		s.waiters = append(s.waiters, ch)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// ServiceAccount writes a Google service-account key file for project
// whose token endpoint is this fake, so the Admin SDK's whole credentials
// flow (a signed JWT exchanged for an access token) runs without network.
func (s *Server) ServiceAccount(path, project string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	sa := map[string]string{
		"type": "service_account", "project_id": project, "private_key_id": "fake-key",
		"private_key": string(pemKey), "client_email": "fieldsync@" + project + ".iam.gserviceaccount.com",
		"client_id": "1", "token_uri": s.srv.URL + "/token",
	}
	b, err := json.Marshal(sa)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// Tokens is how many access tokens the fake's token endpoint issued.
func (s *Server) Tokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens
}

// Hold makes sends to token wait, unanswered, until the returned release is
// called (a test kills the sender while a push is in flight).
func (s *Server) Hold(token string) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.holds[token] = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.holds, token)
			s.mu.Unlock()
			close(ch)
		})
	}
}

// Held reports how many sends are waiting on a Hold now.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		s.mu.Lock()
		s.tokens++
		n := s.tokens
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token": "fake-access-token-%d", "token_type": "Bearer", "expires_in": 3600}`, n)
		return
	}
	// POST /v1/projects/{project}/messages:send
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/projects/")
	project, _, _ := strings.Cut(rest, "/")
	if !ok || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/messages:send") {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "", "unknown path "+r.URL.Path)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Message json.RawMessage `json:"message"`
	}
	var msg struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(req.Message, &msg) != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "", "malformed request")
		return
	}
	s.mu.Lock()
	if hold := s.holds[msg.Token]; hold != nil {
		s.held++
		s.mu.Unlock()
		select {
		case <-hold:
		case <-r.Context().Done(): // the sender went away: nothing was answered
			s.mu.Lock()
			s.held--
			s.mu.Unlock()
			return
		}
		s.mu.Lock()
		s.held--
	}
	a := Answer{Status: http.StatusOK}
	if sc := s.scripts[msg.Token]; len(sc) > 0 {
		a = sc[0]
		if len(sc) > 1 {
			s.scripts[msg.Token] = sc[1:]
		}
	}
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	s.requests = append(s.requests, Request{Project: project, Token: msg.Token, Auth: r.Header.Get("Authorization"),
		Message: req.Message, Status: a.Status, At: time.Now()})
	if a.Status == http.StatusOK {
		s.sent++
		for _, ch := range s.waiters {
			close(ch)
		}
		s.waiters = nil
	}
	n := len(s.requests)
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay) // the fake's latency, not a test waiting for a condition
	}

	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	switch a.Status {
	case http.StatusOK:
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		fmt.Fprintf(w, `{"name": "projects/%s/messages/%d"}`, project, n)
	case http.StatusNotFound:
		writeError(w, a.Status, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
	case http.StatusBadRequest:
		writeError(w, a.Status, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
			"The registration token is not a valid FCM registration token")
	case http.StatusTooManyRequests:
		writeError(w, a.Status, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for sending messages to this device.")
	case http.StatusServiceUnavailable:
		writeError(w, a.Status, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")
	case http.StatusUnauthorized, http.StatusForbidden:
		writeError(w, a.Status, "PERMISSION_DENIED", "THIRD_PARTY_AUTH_ERROR", "APNs certificate or web push auth key was invalid or missing.")
	default:
		writeError(w, a.Status, "INTERNAL", "INTERNAL", "Internal error encountered.")
	}
}

// writeError writes a google.rpc.Status error body as FCM does.
func writeError(w http.ResponseWriter, code int, status, fcmCode, message string) {
	type detail struct {
		Type      string `json:"@type"`
		ErrorCode string `json:"errorCode,omitempty"`
	}
	var details []detail
	if fcmCode != "" {
		details = append(details, detail{Type: "type.googleapis.com/google.firebase.fcm.v1.FcmError", ErrorCode: fcmCode})
	}
	body := map[string]any{"error": map[string]any{"code": code, "message": message, "status": status, "details": details}}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(body)
}
