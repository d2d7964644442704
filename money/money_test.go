package money

import (
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"testing"
)

func rat(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("bad test value %q", s)
	}
	return r
}

// The first rows are ones binary floating point gets wrong: the server used
// to compute math.Round(qty*unit*(1-pct/100)*100)/100 in float64.
func TestLineTotalIsExactWhereFloatIsNot(t *testing.T) {
	t.Parallel()
	cases := []struct {
		qty, unit, pct string
		currency       string
		want           string
	}{
		{"1", "1.005", "0", "EUR", "1.01"},     // 1.005*100 is 100.49999999999999 in float64
		{"1", "2.345", "0", "EUR", "2.35"},     // half away from zero, not half-down by representation
		{"3", "0.1", "0", "EUR", "0.30"},       // agrees, and stays exact
		{"1", "10.00", "15.5", "EUR", "8.45"},  // 10*(1-0.155)
		{"7", "1.15", "0", "EUR", "8.05"},      // 8.049999999999999 before rounding
		{"0.125", "19.99", "0", "EUR", "2.50"}, // 2.49875
		{"1", "1234.5", "0", "JPY", "1235"},    // no minor unit
		{"2", "1.2345", "0", "KWD", "2.469"},   // three minor digits
	}
	for _, c := range cases {
		got := Format(LineTotal(rat(t, c.qty), rat(t, c.unit), rat(t, c.pct), Digits(c.currency)), Digits(c.currency))
		if got != c.want {
			t.Errorf("%s x %s less %s%% in %s = %s, want %s", c.qty, c.unit, c.pct, c.currency, got, c.want)
		}
	}
	// The float result differs from the exact one on the first two rows: the
	// reason this package exists.
	q, u := 1.0, 1.005
	if f := math.Round(q*u*100) / 100; f != 1.00 {
		t.Fatalf("float64 rounding of 1.005 gave %v; the test's premise changed", f)
	}
}

// Each line is rounded to the cent before it is summed, so the total is
// exactly the sum of the printed lines (961.31 x 500 + 0.10 x 500).
func TestTotalOfManyLinesIsExact(t *testing.T) {
	t.Parallel()
	total := new(big.Rat)
	for i := range 1000 {
		unit := rat(t, "961.30543")
		if i%2 == 1 {
			unit = rat(t, "0.1")
		}
		total.Add(total, LineTotal(big.NewRat(1, 1), unit, new(big.Rat), 2))
	}
	if got := Format(total, 2); got != "480705.00" {
		t.Fatalf("total = %s, want 480705.00", got)
	}
}

func TestParseAndNumber(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"0", "0.5", "612.50", "0.0125", "999999999999999.9999"} {
		if _, err := Parse(ok); err != nil {
			t.Errorf("Parse(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-1", "1e3", "1,50", "01.5", "1.", ".5", "0.00001", " 1"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	for _, c := range []struct {
		v    any
		dec  int
		want string // "" for an error
	}{
		{0.1, 2, "1/10"},
		{json.Number("12.125"), 3, "97/8"},
		{json.Number("12.1255"), 3, ""},
		{1250.5, 3, "2501/2"},
		{12.345, 2, ""},
		{int64(40), 0, "40"},
		{"12", 2, ""},
	} {
		r, err := Number(c.v, c.dec)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("Number(%v, %d) = %v, want an error", c.v, c.dec, r)
		case c.want != "" && (err != nil || r.RatString() != c.want):
			t.Errorf("Number(%v, %d) = %v, %v, want %s", c.v, c.dec, r, err, c.want)
		}
	}
}

func TestAdd(t *testing.T) {
	t.Parallel()
	if got, err := Add("0.1", "0.2", 2); err != nil || got != "0.30" {
		t.Fatalf("0.1 + 0.2 = %q, %v", got, err)
	}
	if got, _ := Add("", "5", 0); got != "5" {
		t.Fatalf("empty + 5 = %q", got)
	}
	if _, err := Add("1", "1e2", 2); err == nil || !strings.Contains(err.Error(), "not an amount") {
		t.Fatalf("Add accepted an exponent: %v", err)
	}
}
