// Package humanize formats sizes for people: the one way thinbox prints a byte count
// in listings, summaries and doctor's checks. It must never parse input; sizes given
// on the command line are systemd's business (systemd.Limits).
package humanize

import "fmt"

// Bytes formats n in binary units with one decimal: "512 B", "1.9 MiB", "2.1 GiB".
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
