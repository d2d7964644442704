package fieldsales

import (
	"fmt"
	"slices"
	"strings"
)

// WriteRulesMarkdown renders the write-rule table for docs/access.md
// (between the markers "<!-- write-rules -->" and "<!-- /write-rules -->";
// TestAccessDocMatchesWriteRules keeps the two equal).
func WriteRulesMarkdown() string {
	var b strings.Builder
	grants := func(gs []Grant) string {
		if len(gs) == 0 {
			return "nobody"
		}
		s := make([]string, len(gs))
		for i, g := range gs {
			s[i] = g.String()
		}
		return strings.Join(s, "; ")
	}
	b.WriteString("| collection | state | create | update | delete |\n|---|---|---|---|---|\n")
	names := sortedKeys(WriteRules)
	for _, name := range names {
		r := WriteRules[name]
		state := "—"
		if r.State != "" {
			state = fmt.Sprintf("`%s`: %s", r.State, strings.Join(r.States, ", "))
		}
		create := grants(r.Create)
		if r.IDPrefix != "" {
			create += fmt.Sprintf(" (ids `%s*` are the server's)", r.IDPrefix)
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", name, state, create, grants(r.Update), grants(r.Delete))
	}
	b.WriteString("\n| collection | field | rule |\n|---|---|---|\n")
	for _, name := range names {
		r := WriteRules[name]
		for _, f := range sortedKeys(r.Fields) {
			fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", name, f, r.Fields[f].describe())
		}
		if r.ServerRest {
			fmt.Fprintf(&b, "| `%s` | every other field | server only |\n", name)
		}
	}
	b.WriteString("\nRelations checked with the documents they name:\n\n")
	for _, rel := range Relations {
		b.WriteString("- " + rel + "\n")
	}
	return b.String()
}

func (f FieldRules) describe() string {
	var parts []string
	if f.Server {
		parts = append(parts, "server only")
	}
	if f.Fixed {
		parts = append(parts, "set on create, then fixed")
	}
	if f.By != nil {
		parts = append(parts, "written by "+strings.Join(f.By, ", "))
	}
	if f.Values != nil {
		parts = append(parts, "a device writes only "+strings.Join(f.Values, ", "))
	}
	if f.Moves != nil {
		var mv []string
		for _, from := range sortedKeys(f.Moves) {
			name := from
			if name == "" {
				name = "(new)"
			}
			to := slices.Clone(f.Moves[from])
			mv = append(mv, name+" → "+strings.Join(to, "/"))
		}
		parts = append(parts, "moves: "+strings.Join(mv, "; "))
	}
	if f.States != nil {
		var st []string
		for _, s := range f.States {
			if s != "" {
				st = append(st, s)
			}
		}
		parts = append(parts, "changed only while "+strings.Join(st, "/"))
	}
	if len(parts) == 0 {
		return "whoever may write the document"
	}
	return strings.Join(parts, "; ")
}
