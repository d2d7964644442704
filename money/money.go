// Package money does exact arithmetic on the amounts the protocol carries:
// prices and totals are decimal strings ("612.50"), quantities and discount
// percentages are JSON numbers with a bounded number of decimals. Nothing
// here uses binary floating point for a value, so 0.1 + 0.2 is 0.3 and an
// order of a million euros is right to the cent (docs/protocol.md, "Money").
//
// It knows no HTTP, store or engine package: workflow, kpi and the import
// and demo commands share it.
package money

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
)

// Limits of the wire formats; the JSON Schemas state the same.
const (
	PriceDecimals    = 4 // a price may be finer than a cent: 0.0125 EUR a screw
	QuantityDecimals = 3 // 12.125 metres of cable
	DiscountDecimals = 2 // 12.5 percent
)

// amountRE is the wire format of an amount: no sign, no exponent, no
// thousands separator, a dot before at most PriceDecimals decimals.
var amountRE = regexp.MustCompile(`^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$`)

// Parse reads an amount in the wire format.
func Parse(s string) (*big.Rat, error) {
	if !amountRE.MatchString(s) {
		return nil, fmt.Errorf("%q is not an amount: digits with an optional '.' and at most %d decimals, e.g. \"612.50\"", s, PriceDecimals)
	}
	r, _ := new(big.Rat).SetString(s)
	return r, nil
}

// Number converts a decoded JSON number (json.Number, float64 or a Go
// integer) to the exact decimal it was written as, refusing more than
// decimals digits after the point. A float64 goes through its shortest
// representation, which gives back the literal of any JSON number of up to
// 15 significant digits.
func Number(v any, decimals int) (*big.Rat, error) {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = n.String()
	case float64:
		s = strconv.FormatFloat(n, 'f', -1, 64)
	case int:
		s = strconv.Itoa(n)
	case int64:
		s = strconv.FormatInt(n, 10)
	default:
		return nil, fmt.Errorf("%v is not a number", v)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("%q is not a number", s)
	}
	scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(decimals)))
	if !scaled.IsInt() {
		return nil, fmt.Errorf("%s has more than %d decimals", s, decimals)
	}
	return r, nil
}

// Digits is the number of minor-unit digits of an ISO 4217 currency: totals
// are rounded to it. Unknown and empty codes use 2.
func Digits(currency string) int {
	switch currency {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	case "CLF", "UYW":
		return 4
	}
	return 2
}

// Format writes r with exactly digits decimals, rounding half away from
// zero (2.345 -> "2.35", 2.344 -> "2.34").
func Format(r *big.Rat, digits int) string { return r.FloatString(digits) }

// Round rounds r to digits decimals, half away from zero.
func Round(r *big.Rat, digits int) *big.Rat {
	out, _ := new(big.Rat).SetString(Format(r, digits))
	return out
}

// Net is a unit price after a percentage discount, unrounded:
// unit * (100 - pct) / 100.
func Net(unit, pct *big.Rat) *big.Rat {
	off := new(big.Rat).Sub(big.NewRat(100, 1), pct)
	n := new(big.Rat).Mul(unit, off)
	return n.Quo(n, big.NewRat(100, 1))
}

// LineTotal is quantity times the net unit price, rounded to the
// currency's minor unit. An order's total is the sum of its rounded line
// totals, so the printed lines always add up to the printed total.
func LineTotal(qty, unit, pct *big.Rat, digits int) *big.Rat {
	return Round(new(big.Rat).Mul(qty, Net(unit, pct)), digits)
}

// Add returns the sum of two amounts in the wire format, written with
// digits decimals; an empty string counts as zero.
func Add(a, b string, digits int) (string, error) {
	sum := new(big.Rat)
	for _, s := range []string{a, b} {
		if s == "" {
			continue
		}
		r, err := Parse(s)
		if err != nil {
			return "", err
		}
		sum.Add(sum, r)
	}
	return Format(sum, digits), nil
}

func pow10(n int) *big.Int {
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
}
