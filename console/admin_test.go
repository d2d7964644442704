package console

import "testing"

func TestLineOf(t *testing.T) {
	t.Parallel()
	doc := []byte(`{
  "policy": {"discount_limit_pct": 10},
  "activities": [
    {"id": "a", "sla": "4h"},
    {
      "id": "b",
      "sla": "soon",
      "depends_on": ["a", "x"]
    }
  ]
}`)
	for _, tc := range []struct {
		pointer string
		want    int
	}{
		{"", 1},
		{"/policy", 2},
		{"/policy/discount_limit_pct", 2},
		{"/activities/0/sla", 4},
		{"/activities/1", 5},
		{"/activities/1/sla", 7},
		{"/activities/1/depends_on/1", 8},
		{"/activities/1/responsible", 5}, // missing: the object that lacks it
		{"/activities/7/id", 3},          // missing element: the array
	} {
		if got := lineOf(doc, tc.pointer); got != tc.want {
			t.Errorf("lineOf(%q) = %d, want %d", tc.pointer, got, tc.want)
		}
	}
	if got := lineOf([]byte(`{"a": [1, `), "/b"); got != 1 {
		t.Errorf("broken JSON: line %d, want the root's 1", got)
	}
}
