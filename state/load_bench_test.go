package state

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// benchStore holds n records of running containers, as a host with n services has;
// their pid is this process, so the liveness check does the work it does for real.
func benchStore(b *testing.B, n int) *Store {
	b.Helper()
	dir := b.TempDir()
	s := NewStore(dir+"/run", dir+"/lib")
	self := os.Getpid()
	code := 0
	for i := range n {
		rec := &Record{
			Name: fmt.Sprintf("svc-%02d", i), Image: "busybox", ImageDigest: "sha256:0123456789abcdef",
			Command: []string{"/bin/sh", "-c", "exec httpd -f -p 8080"}, Net: "none", Init: true,
			Status: Running, Pid: self, PidStart: StartTime(self), Started: time.Now(), ExitCode: &code,
			Unit: fmt.Sprintf("thinbox-svc-%02d.service", i), Cgroup: "/system.slice/thinbox-svc.service",
			Limits: map[string]string{"memory": "64m", "pids": "20", "cpu": "0.5"},
		}
		if err := s.Create(rec); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkLoad is one record read and checked for liveness (inspect, stop, rm).
func BenchmarkLoad(b *testing.B) {
	s := benchStore(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Load("svc-00"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList is `thinbox ps` and the GC every `thinbox run` starts with, on a host
// running 20 containers: every record is read and checked.
func BenchmarkList(b *testing.B) {
	s := benchStore(b, 20)
	b.ReportAllocs()
	for b.Loop() {
		recs, err := s.List()
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) != 20 {
			b.Fatalf("listed %d records, want 20", len(recs))
		}
	}
}

// BenchmarkGC is the housekeeping at the start of every `thinbox run` with 20 running
// containers and nothing to collect.
func BenchmarkGC(b *testing.B) {
	s := benchStore(b, 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GC(); err != nil {
			b.Fatal(err)
		}
	}
}
