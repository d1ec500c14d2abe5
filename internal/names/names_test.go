package names

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	good := []string{"a", "busybox", "web-1", "my_app.v2", "A9", strings.Repeat("x", 63)}
	for _, s := range good {
		if err := Check("container", s); err != nil {
			t.Errorf("Check(%q) = %v, want nil", s, err)
		}
	}
	bad := []string{"", "-a", ".", "..", "_x", "a/b", "a b", "a\nb", "a\\x2d", "a@b", "a:b", "ü", "a$b", "a%b",
		strings.Repeat("x", 64), "../etc", "x\x00"}
	for _, s := range bad {
		err := Check("container", s)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Check(%q) = %v, want ErrInvalid", s, err)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("Check(%q): error spans lines: %q", s, err)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"a", "web-1", "../x", "a\nb", "%n", strings.Repeat("y", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Check("unit", s) != nil {
			return
		}
		// Whatever passes must be safe as a path element, a hostname label and a unit name
		// fragment without escaping.
		if len(s) == 0 || len(s) > MaxLen || s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00\n %$:@") {
			t.Fatalf("Check accepted %q", s)
		}
	})
}
