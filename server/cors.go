package server

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
)

// CORS lets browser apps (RxDB in a web app, a WatermelonDB web build) call
// the API from the origins the operator lists; docs/operations.md and
// docs/integrate.md. Callers authenticate with bearer tokens, never with
// cookies, so credentials are not allowed: a listed origin can do nothing a
// token does not already allow.

// corsHeaders are the request headers an app sends: the token, JSON bodies,
// the RxDB adapter's device id and EventSource's reconnection position.
var corsHeaders = []string{fiber.HeaderAuthorization, fiber.HeaderContentType, fiber.HeaderAccept, "X-Device-Id", "Last-Event-ID"}

func corsHandler(origins []string) fiber.Handler {
	return cors.New(cors.Config{
		AllowOrigins:  strings.Join(origins, ","),
		AllowMethods:  "GET,POST,PUT,PATCH,DELETE",
		AllowHeaders:  strings.Join(corsHeaders, ","),
		ExposeHeaders: "X-Request-Id,Retry-After",
		MaxAge:        600, // seconds a browser may cache a preflight answer
	})
}

// ParseOrigins parses a comma-separated origin list: each is
// scheme://host[:port] with scheme http or https, or the list is "*" (any
// origin). Empty means none.
func ParseOrigins(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if s == "*" {
		return []string{"*"}, nil
	}
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("%q is not an origin (scheme://host[:port], http or https); use * alone for any", o)
		}
		out = append(out, u.Scheme+"://"+strings.ToLower(u.Host))
	}
	if len(out) == 0 {
		return nil, errors.New("no origin given")
	}
	return out, nil
}
