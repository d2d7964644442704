package app_test

// The OpenAPI description (package openapi) against the real server: every
// route is described and every described operation is a route, and every
// response the API tests of this package receive through http.DefaultClient
// is validated against the description (TestMain reports violations).

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/fieldsync/fieldsync/openapi"
)

// The described operations are exactly the server's routes.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	in := startServer(t, "", nil).In
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

// GET /v1/openapi.json on a running server: public like GET /v1/schemas (no
// token needed, and a bad one does not matter: the operation's security is
// empty in the description too), byte for byte the committed
// openapi/openapi.json, and a valid OpenAPI 3.1 document for the validator
// the tests use.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "", nil)
	committed, err := os.ReadFile("../openapi/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"", "not-a-token"} {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/openapi.json", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("token %q: %d %s", tok, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if !bytes.Equal(body, committed) {
			t.Fatalf("token %q: the served description is not openapi/openapi.json as committed", tok)
		}
	}
	doc, err := libopenapi.NewDocument(committed)
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", v)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build the model: %v", err)
	}
	op := model.Model.Paths.PathItems.GetOrZero("/v1/openapi.json").Get
	if op == nil || op.Security == nil || len(op.Security) != 0 {
		t.Fatal("the description does not say GET /v1/openapi.json needs no token")
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("against the OpenAPI 3.1 schema: %s: %s", e.Message, e.Reason)
		}
	}
}

// A synced document in a reply is checked against its collection's JSON
// Schema (components.schemas.<collection>, picked by the change's
// collection): the description references the schemas of schemas/ rather
// than taking any object.
func TestOpenAPIDocumentsFollowTheirSchemas(t *testing.T) {
	t.Parallel()
	doc, err := libopenapi.NewDocument(openapi.JSON())
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	reply := func(doc map[string]any) (bool, string) {
		body, _ := json.Marshal(map[string]any{"changes": []any{map[string]any{"op": "put", "collection": "customer_notes", "id": "n-1", "version": 1,
			"doc": doc}}, "checkpoint": "cp", "has_more": false})
		req := httptest.NewRequest("GET", "http://fieldsync.test/v1/sync/pull?limit=10", nil)
		req.Header.Set("Authorization", "Bearer x")
		resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)), Request: req}
		ok, verrs := v.ValidateHttpResponse(req, resp)
		var msgs []string
		for _, e := range verrs {
			msgs = append(msgs, e.Message)
			for _, se := range e.SchemaValidationErrors {
				msgs = append(msgs, se.Reason)
			}
		}
		return ok, strings.Join(msgs, "; ")
	}
	if ok, why := reply(map[string]any{"customer_id": "c-1", "text": "Needs 40 motors", "created_at": "2026-12-02T10:00:00Z"}); !ok {
		t.Fatalf("a valid note was refused: %s", why)
	}
	for name, bad := range map[string]map[string]any{
		"text not a string":    {"customer_id": "c-1", "text": 40, "created_at": "2026-12-02T10:00:00Z"},
		"a field not in notes": {"customer_id": "c-1", "text": "x", "created_at": "2026-12-02T10:00:00Z", "segment": "OEM"},
	} {
		if ok, _ := reply(bad); ok {
			t.Errorf("%s: the description let the note through", name)
		}
	}
}
