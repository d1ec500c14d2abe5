package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// cmdNmsum reads `go tool nm -size` on stdin and prints the bytes of machine code per
// module (third-party), per package (thinbox's own) and per top-level standard package
// (net, crypto, encoding, ...): what a binary is made of, largest first.
func cmdNmsum(args []string) error {
	const self = "github.com/thinbox/thinbox"
	sums := map[string]int64{}
	var total int64
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// address size type name...
		if len(f) < 4 {
			continue
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size == 0 {
			continue
		}
		// Code only: it is most of the file, and the pc-line table (.gopclntab, the
		// next largest section) grows with it. Data symbols include .bss (the FIPS DRBG's
		// 32 MiB), which takes no room in the file.
		if f[2] != "T" && f[2] != "t" {
			continue
		}
		name := strings.Join(f[3:], " ")
		total += size
		sums[owner(name, self)] += size
	}
	if err := sc.Err(); err != nil {
		return err
	}
	type kv struct {
		k string
		v int64
	}
	var all []kv
	for k, v := range sums {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v })
	for _, e := range all {
		fmt.Printf("%d\t%.1f%%\t%s\n", e.v, 100*float64(e.v)/float64(total), e.k)
	}
	fmt.Printf("%d\t100%%\ttotal machine code (.text)\n", total)
	return nil
}

// owner names what a symbol belongs to.
func owner(name, self string) string {
	if i := strings.IndexByte(name, '['); i > 0 {
		name = name[:i] // generic instantiation: the function's own package
	}
	for _, p := range []string{"type:*", "type:", "go:itab.*", "go:itab.", "go:", ".eq.", ".hash."} {
		if strings.HasPrefix(name, p) {
			name = name[len(p):]
			break
		}
	}
	name = strings.TrimLeft(name, "*[]")
	pkg := name
	slash := strings.LastIndex(name, "/")
	if i := strings.Index(name[slash+1:], "."); i >= 0 {
		pkg = name[:slash+1+i]
	}
	first, _, _ := strings.Cut(pkg, "/")
	if !strings.Contains(first, ".") {
		if pkg == "main" {
			return self + "/cmd/thinbox"
		}
		switch first {
		case "runtime", "internal", "sync", "reflect", "unique", "weak", "iter":
			return "std: runtime, reflect, sync, internal/*"
		case "vendor":
			return "std: vendor/golang.org/x (crypto, net)"
		}
		return "std: " + first
	}
	if strings.HasPrefix(pkg, self+"/") {
		return pkg
	}
	el := strings.Split(pkg, "/")
	n := 2
	if first == "github.com" || first == "golang.org" || strings.HasPrefix(first, "gopkg") {
		n = 3
	}
	if len(el) > n && (strings.HasPrefix(el[n], "v") && len(el[n]) <= 3) {
		n++ // major version suffix: github.com/urfave/cli/v2
	}
	if len(el) < n {
		n = len(el)
	}
	return strings.Join(el[:n], "/")
}
