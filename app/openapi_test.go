package main

// The OpenAPI description (package openapi) against the real server: every
// route is described and every described operation is a route, and every
// response the API tests of this package receive through http.DefaultClient
// is validated against the description (TestMain reports violations).

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/fieldsync/fieldsync/openapi"
)

// The described operations are exactly the server's routes.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	in := startServer(t, "", nil).in
	param := regexp.MustCompile(`:([A-Za-z0-9_]+)`)
	var routes []string
	for _, r := range in.Server.App().GetRoutes(true) {
		if r.Method == http.MethodHead || r.Method == "USE" {
			continue // HEAD comes with every GET; USE is middleware
		}
		routes = append(routes, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	doc, err := libopenapi.NewDocument(openapi.JSON())
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatal(err)
	}
	var described []string
	for path, item := range model.Model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(routes)
	sort.Strings(described)
	routes = slices.Compact(routes)
	for _, r := range routes {
		if !slices.Contains(described, r) {
			t.Errorf("route %s is not in openapi/openapi.json", r)
		}
	}
	for _, d := range described {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi/openapi.json describes %s, which the server does not serve", d)
		}
	}
}

// validating wraps http.DefaultClient's transport so that every JSON
// response of the API tests is checked against the description.
var validating = struct {
	sync.Mutex
	v          validator.Validator
	violations []string
}{}

func validateResponses() error {
	doc, err := libopenapi.NewDocument(openapi.JSON())
	if err != nil {
		return err
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return fmt.Errorf("openapi validator: %v", errs)
	}
	validating.v = v
	base := http.DefaultTransport
	http.DefaultClient.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(req)
		if err != nil || req.Method == http.MethodOptions || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			// A CORS preflight is the browser's, not an API operation.
			return resp, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		check := *resp
		check.Body = io.NopCloser(bytes.NewReader(body))
		validating.Lock()
		ok, verrs := validating.v.ValidateHttpResponse(req, &check)
		if !ok {
			for _, e := range verrs {
				if resp.StatusCode == http.StatusNotFound && e.ValidationType == "path" {
					continue // a test of an endpoint that does not exist
				}
				msg := fmt.Sprintf("%s %s -> %d: %s", req.Method, req.URL.Path, resp.StatusCode, e.Message)
				for _, se := range e.SchemaValidationErrors {
					msg += fmt.Sprintf("\n\t%s: %s", se.FieldPath, se.Reason)
				}
				validating.violations = append(validating.violations, msg)
			}
		}
		validating.Unlock()
		return resp, nil
	})
	return nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// responseViolations returns what the validator found, once each.
func responseViolations() []string {
	validating.Lock()
	defer validating.Unlock()
	out := slices.Clone(validating.violations)
	sort.Strings(out)
	return slices.Compact(out)
}
