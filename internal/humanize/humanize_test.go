package humanize

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0:          "0 B",
		1023:       "1023 B",
		1024:       "1.0 KiB",
		2 << 20:    "2.0 MiB",
		1992294:    "1.9 MiB",
		2254857830: "2.1 GiB",
		1<<64 - 1:  "16.0 EiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
