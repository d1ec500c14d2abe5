package units

import "testing"

// BenchmarkRender is what `thinbox run --unit` and `thinbox unit` spend turning a
// container into its unit text: options, escaping and go-systemd's serializer. Speed
// goals live in benchmarks/ (RESULTS.md); this is for finding regressions.
func BenchmarkRender(b *testing.B) {
	for _, name := range []string{"minimal", "full", "hostile-args"} {
		s := exampleServices()[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Render(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
