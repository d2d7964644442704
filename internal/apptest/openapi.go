package apptest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/fieldsync/fieldsync/openapi"
)

// validating wraps http.DefaultClient's transport so that every JSON
// response of the API tests is checked against the description.
var validating = struct {
	sync.Mutex
	v          validator.Validator
	violations []string
}{}

// ValidateResponses makes http.DefaultClient check every JSON response it
// receives against the OpenAPI description (package openapi); a test
// binary's TestMain calls it first and ResponseViolations last.
func ValidateResponses() error {
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

// ResponseViolations returns what the validator found, once each.
func ResponseViolations() []string {
	validating.Lock()
	defer validating.Unlock()
	out := slices.Clone(validating.violations)
	sort.Strings(out)
	return slices.Compact(out)
}

// Main runs a test binary's tests with every JSON response they receive
// through http.DefaultClient checked against the OpenAPI description, then
// runs after (stopping what the tests shared), stops the shared FerretDB
// (Ferret) and exits; a response that does not match the description fails
// the run.
func Main(m *testing.M, after ...func()) {
	if err := ValidateResponses(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	for _, f := range after {
		f()
	}
	if stopFerret != nil {
		stopFerret()
	}
	if v := ResponseViolations(); len(v) > 0 {
		fmt.Fprintf(os.Stderr, "%d responses do not match openapi/openapi.json:\n%s\n", len(v), strings.Join(v, "\n"))
		code = 1
	}
	os.Exit(code)
}
