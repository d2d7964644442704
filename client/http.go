package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// RequestError is a whole request the server refused or could not serve.
// Push and Pull return it, unwrapped or wrapped, for 4xx replies other than
// 429 (nothing is dropped; the caller decides: refresh the token, shrink the
// batch, reset the checkpoint), and as the last failure when retries of a
// 429 or 5xx reply run out.
type RequestError struct {
	Status int
	Body   engine.ErrorBody
	Header http.Header // the reply's headers (Upload-Offset of a file upload)
}

func (e *RequestError) Error() string {
	msg := fmt.Sprintf("client: server answered %d", e.Status)
	if e.Body.Code != "" {
		msg += " " + e.Body.Code
	}
	if e.Body.Message != "" {
		msg += ": " + e.Body.Message
	}
	if e.Body.RequestID != "" {
		msg += " (request " + e.Body.RequestID + ")"
	}
	return msg
}

// maxReply bounds a reply body. A pull page stops after about 1 MiB plus one
// document, so this is far above anything a server sends.
const maxReply = 64 << 20

// call sends a request until it gets an answer that is not transient, and
// decodes a 2xx reply into out. Network errors, 429 and 5xx are retried with
// the same body (pushes are idempotent by mutation id) after a backoff,
// until ctx ends or MaxRetries is reached. It returns the number of retries.
func (c *Client) call(ctx context.Context, method, url string, body func() ([]byte, error), out any) (retries int, err error) {
	return c.callRequest(ctx, func() (request, error) {
		r := request{method: method, url: url}
		if body != nil {
			r.body, err = body()
		}
		return r, err
	}, out)
}

// callRequest is call for any request: next builds each attempt.
func (c *Client) callRequest(ctx context.Context, next func() (request, error), out any) (retries int, err error) {
	for {
		r, err := next()
		if err != nil {
			return retries, err
		}
		retry, after, err := c.send(ctx, r, out)
		if err == nil || !retry {
			return retries, err
		}
		if ctx.Err() != nil {
			return retries, fmt.Errorf("client: %s %s: %w; last attempt: %w", r.method, r.url, ctx.Err(), err)
		}
		if c.cfg.MaxRetries > 0 && retries >= c.cfg.MaxRetries {
			return retries, fmt.Errorf("client: %s %s: gave up after %d retries: %w", r.method, r.url, retries, err)
		}
		if serr := c.cfg.Sleep(ctx, c.backoff(retries, after)); serr != nil {
			return retries, fmt.Errorf("client: %s %s: %w; last attempt: %w", r.method, r.url, serr, err)
		}
		retries++
	}
}

// request is one HTTP request of the protocol.
type request struct {
	method, url string
	body        []byte
	contentType string            // of body; JSON when empty
	header      map[string]string // further headers (Upload-Offset)
}

// send makes one attempt. retry says whether the failure is transient;
// after is the server's Retry-After, if any.
func (c *Client) send(ctx context.Context, r request, out any) (retry bool, after time.Duration, err error) {
	token := ""
	if c.cfg.Token != nil {
		token = c.cfg.Token()
	}
	return send(ctx, c.cfg.HTTPClient, token, r, out)
}

// send makes one request with an optional bearer token, and decodes a 2xx
// reply into out. retry says whether a failure is transient (network, 429,
// 5xx); after is the server's Retry-After, if any. The device client and
// Admin share it.
func send(ctx context.Context, hc *http.Client, token string, r request, out any) (retry bool, after time.Duration, err error) {
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, rd)
	if err != nil {
		return false, 0, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return true, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		// The connection broke mid-reply: the request may have been
		// served, which a retry with the same mutation ids makes harmless.
		return true, 0, fmt.Errorf("client: read reply: %w", err)
	}
	switch st := resp.StatusCode; {
	case st >= 200 && st < 300:
		if out == nil {
			return false, 0, nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return false, 0, fmt.Errorf("client: %s %s: decode reply: %w", r.method, r.url, err)
		}
		return false, 0, nil
	case st == http.StatusTooManyRequests || st >= 500:
		return true, retryAfter(resp.Header.Get("Retry-After")), requestError(st, raw, resp.Header)
	default:
		return false, 0, requestError(st, raw, resp.Header)
	}
}

func requestError(status int, raw []byte, h http.Header) *RequestError {
	var b struct {
		Error engine.ErrorBody `json:"error"`
	}
	if json.Unmarshal(raw, &b) != nil || b.Error.Code == "" {
		b.Error.Message = http.StatusText(status)
	}
	return &RequestError{Status: status, Body: b.Error, Header: h}
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// backoff is the wait before retry n (0-based): BackoffInitial doubled n
// times, capped at BackoffMax, less a random part of up to Jitter of it;
// never less than the server's Retry-After.
func (c *Client) backoff(n int, retryAfter time.Duration) time.Duration {
	d := c.cfg.BackoffInitial
	for i := 0; i < n && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.BackoffMax)
	if c.cfg.Jitter > 0 {
		d -= time.Duration(rand.Float64() * c.cfg.Jitter * float64(d))
	}
	return max(d, retryAfter)
}
