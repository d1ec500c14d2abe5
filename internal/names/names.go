// Package names holds the one grammar for the names of containers, images and services.
//
// A name becomes a directory under /var/lib/thinbox and /run/thinbox, a hostname, and part
// of a systemd unit name (thinbox-NAME.scope, thinbox-NAME.service). The grammar is strict
// enough that none of those needs escaping: 1 to 63 characters from [A-Za-z0-9_.-],
// starting with a letter or digit. 63 is the longest hostname label. names must never
// accept a string that would need escaping in any of those places.
package names

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrInvalid is wrapped by every error Check returns.
var ErrInvalid = errors.New("invalid name")

// MaxLen is the longest name accepted: a hostname label.
const MaxLen = 63

// Check returns nil when s is a valid name; kind ("container", "image", "unit") only
// words the error.
func Check(kind, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s name is empty", ErrInvalid, kind)
	}
	if len(s) > MaxLen {
		return fmt.Errorf("%w: %s name is %d characters long, at most %d allowed", ErrInvalid, kind, len(s), MaxLen)
	}
	if !alnum(s[0]) {
		return fmt.Errorf("%w: %s name %s must start with a letter or digit", ErrInvalid, kind, strconv.Quote(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !alnum(c) && c != '_' && c != '.' && c != '-' {
			return fmt.Errorf("%w: %s name %s: character %s not allowed (use A-Z a-z 0-9 _ . -)", ErrInvalid, kind, strconv.Quote(s), strconv.QuoteRune(rune(c)))
		}
	}
	return nil
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
