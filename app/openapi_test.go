package app_test

// The OpenAPI description (package openapi) against the real server: every
// route is described and every described operation is a route, and every
// response the API tests of this package receive through http.DefaultClient
// is validated against the description (TestMain reports violations).

import (
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"

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
