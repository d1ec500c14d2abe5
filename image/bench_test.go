package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
)

// BenchmarkImport is the hot path: a gzipped tree of small and medium files, like a
// rootfs. Set THINBOX_BENCH_TARBALL to a real rootfs tarball to measure that instead;
// benchmarks/ compares with tar -xzf.
func BenchmarkImport(b *testing.B) {
	var in []byte
	var raw int64
	if p := os.Getenv("THINBOX_BENCH_TARBALL"); p != "" {
		var err error
		if in, err = os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
		raw = int64(len(in))
	} else {
		var ents []ent
		for d := range 40 {
			ents = append(ents, dirE(fmt.Sprintf("usr/lib/d%d/", d)))
			for f := range 50 {
				size := 512 << (f % 8) // 512 B .. 64 KiB
				ents = append(ents, fileE(fmt.Sprintf("usr/lib/d%d/f%d", d, f), randomText(size)))
				raw += int64(size)
			}
			ents = append(ents, symE(fmt.Sprintf("usr/lib/d%d/link", d), "f0"))
		}
		in = gz(b, tarball(b, ents...))
	}
	e := newEnv(b)
	b.SetBytes(raw)
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.store.Import(context.Background(), "bench", bytes.NewReader(in), ImportOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := e.store.Remove("bench", nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
