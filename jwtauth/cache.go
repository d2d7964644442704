package jwtauth

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// verifiedCap bounds the tokens remembered as verified. A device sends the
// same access token on every request of its 15 minutes, so a few thousand
// cover every device active on an instance; past that an entry is dropped
// and its token is verified again at its next use. An entry is ~200 bytes.
const verifiedCap = 4096

// verified remembers tokens whose signature and claims were checked, so a
// device's next request with the same token skips the Ed25519 verification
// (~50 µs, a tenth of a pull page's server time). It is keyed by the token's
// SHA-256: only the exact bytes that were verified hit, and the cache holds
// no usable token. Time-dependent checks (exp, iat, nbf) are made again on
// every hit with the same leeway, and the issuer and audience compared, so a
// hit answers what a full verification would: access tokens are not revoked
// one by one (docs/access.md), a disabled user is refused by the directory
// on every request, and the key set does not change while a server runs.
type verified struct {
	mu sync.Mutex
	m  map[[32]byte]verifiedEntry
}

type verifiedEntry struct {
	access           Access
	issuer, audience string // as configured when verified
	issuedAt         time.Time
	notBefore        time.Time // zero: none
}

// get returns the verification of token remembered under the configured
// issuer and audience, if it still holds at now.
func (v *verified) get(token string, issuer, audience string, now time.Time) (Access, bool) {
	h := sha256.Sum256([]byte(token))
	v.mu.Lock()
	e, ok := v.m[h]
	v.mu.Unlock()
	if !ok || e.issuer != issuer || e.audience != audience ||
		!now.Before(e.access.Expires.Add(leeway)) || now.Before(e.issuedAt.Add(-leeway)) ||
		!e.notBefore.IsZero() && now.Before(e.notBefore.Add(-leeway)) {
		return Access{}, false
	}
	a := e.access
	a.Actor.Roles = slices.Clone(a.Actor.Roles) // the caller's to keep
	return a, true
}

// put remembers a successful verification of token.
func (v *verified) put(token string, e verifiedEntry, now time.Time) {
	h := sha256.Sum256([]byte(token))
	e.access.Actor.Roles = slices.Clone(e.access.Actor.Roles)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = make(map[[32]byte]verifiedEntry)
	}
	if len(v.m) >= verifiedCap {
		for k, old := range v.m {
			if !now.Before(old.access.Expires.Add(leeway)) {
				delete(v.m, k)
			}
		}
		// Still full of live tokens: drop arbitrary ones (map order), a
		// quarter at a time so the sweep above stays rare.
		for k := range v.m {
			if len(v.m) < verifiedCap*3/4 {
				break
			}
			delete(v.m, k)
		}
	}
	v.m[h] = e
}
