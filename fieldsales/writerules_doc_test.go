package fieldsales

import (
	"os"
	"strings"
	"testing"
)

// TestAccessDocMatchesWriteRules: docs/access.md prints the write-rule table
// as the code declares it. Regenerate with
// FIELDSYNC_WRITE_DOCS=1 go test ./fieldsales -run TestAccessDocMatchesWriteRules
func TestAccessDocMatchesWriteRules(t *testing.T) {
	const path, open, end = "../docs/access.md", "<!-- write-rules -->\n", "<!-- /write-rules -->"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	i, j := strings.Index(doc, open), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q ... %q section", path, open, end)
	}
	want := WriteRulesMarkdown()
	if got := doc[i+len(open) : j]; got != want {
		if os.Getenv("FIELDSYNC_WRITE_DOCS") != "" {
			if err := os.WriteFile(path, []byte(doc[:i+len(open)]+want+doc[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("the write-rule table in %s is not the code's; regenerate it (see the test's comment)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
