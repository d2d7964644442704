package patience

import (
	"testing"
	"time"
)

// deadliner is a test whose deadline is set by the case.
type deadliner struct {
	testing.TB
	at time.Time
	ok bool
}

func (d deadliner) Deadline() (time.Time, bool) { return d.at, d.ok }

func TestOfIsAThirdOfWhatIsLeftWithinBounds(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for _, c := range []struct {
		name     string
		d        deadliner
		min, max time.Duration
	}{
		{"no deadline", deadliner{TB: t}, 5 * time.Minute, 5 * time.Minute},
		{"ten minutes left", deadliner{TB: t, at: now.Add(10 * time.Minute), ok: true}, 3*time.Minute + 19*time.Second, 3*time.Minute + 21*time.Second},
		{"a minute left", deadliner{TB: t, at: now.Add(time.Minute), ok: true}, 30 * time.Second, 30 * time.Second},
		{"an hour left", deadliner{TB: t, at: now.Add(time.Hour), ok: true}, 5 * time.Minute, 5 * time.Minute},
	} {
		if got := Of(c.d); got < c.min || got > c.max {
			t.Errorf("%s: %v, want %v to %v", c.name, got, c.min, c.max)
		}
	}
}

func TestOfABenchmarkWaitsTheMost(t *testing.T) {
	t.Parallel()
	var b testing.B
	if got := Of(&b); got != 5*time.Minute {
		t.Errorf("a benchmark: %v, want 5m", got)
	}
}
