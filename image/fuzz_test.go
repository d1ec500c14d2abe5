package image

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz/FuzzUnpack from the hostile cases")

// FuzzUnpack: whatever the bytes, an import writes nothing outside its store, leaves
// no temp directory or half image, and fails with one line.
//
// The seeds in testdata/fuzz/FuzzUnpack are the hostile cases, built against a
// sentinel path that does not exist when fuzzing; the relative escapes (../../..) in
// them still point at this run's sentinel.
func FuzzUnpack(f *testing.F) {
	f.Add(tarball(f, fileE("a", "a"), symE("evil", up+"/sentinel"), fileE("evil/file", "pwned")))
	f.Add(tarball(f, dirE("sentinel/"), symE("evil", up+"/sentinel"), fileE("evil/file", "pwned"), linkE("h", "evil/file")))
	syncImports = false
	f.Cleanup(func() { syncImports = true })
	f.Fuzz(func(t *testing.T, data []byte) {
		e := newEnv(t)
		// A few bytes of sparse map can describe terabytes of holes, which take
		// seconds a hundred gigabytes to read back; cancellation must still work.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		img, err := e.store.Import(ctx, "fuzz", bytes.NewReader(data), ImportOptions{})
		oneLineErr(t, err)
		if err == nil {
			if fi, err := os.Stat(img.RootFS); err != nil || !fi.IsDir() {
				t.Errorf("imported image has no rootfs: %v", err)
			}
		}
		e.check(t)
	})
}

// TestFuzzSeeds checks that the committed seed corpus is the hostile cases as they are
// now; -write-seeds regenerates it: go test ./image -run TestFuzzSeeds -write-seeds
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzUnpack")
	if *writeSeeds {
		must(t, os.MkdirAll(dir, 0o755))
	}
	seeds := map[string]bool{
		"dotdot": true, "absolute-name": true, "symlink-dir-etc": true, "symlink-dir-relative-out": true,
		"symlink-dir-relative-to-sentinel-in-image": true, "symlink-replaced-by-file-relative": true,
		"symlink-chain-in-image": true, "symlink-loop": true, "hardlink-dotdot": true,
		"hardlink-through-relative-symlink": true, "hardlink-to-symlink": true, "file-over-nonempty-dir": true,
		"truncated-gzip": true, "gzip-not-tar": true,
	}
	e := &env{sentinel: "/nonexistent/sentinel"}
	for _, tc := range hostileCases() {
		if !seeds[tc.name] {
			continue
		}
		b := tc.input(t, e)
		// The end-of-archive blocks add nothing for the fuzzer: a tar ending
		// without them still reads.
		b = bytes.TrimSuffix(b, make([]byte, 1024))
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		path := filepath.Join(dir, tc.name)
		if *writeSeeds {
			must(t, os.WriteFile(path, []byte(body), 0o644))
			continue
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != body {
			t.Errorf("seed %s is out of date with its hostile case (go test ./image -run TestFuzzSeeds -write-seeds)", path)
		}
	}
}
