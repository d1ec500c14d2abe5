# thinbox — build, demo, tests, packages, benchmarks.
#
#   make            build ./thinbox
#   make demo       build, make the busybox image, run a container that shows its isolation
#   make test       every test: unit, root-on-host, systemd in a qemu guest, the .deb in
#                   amd64 and arm64 guests (as root); make check: all but the packages
#   make deb        Debian package (ARCH=arm64 for the cross build)
#   make lintian    lintian on it; make deb-test / arm64-smoke: the package in qemu guests
#   make bench      benchmarks against crun, runc, bwrap, nspawn, podman, lxc

SHELL      := /bin/bash
GO         ?= go
ARCH       ?= $(shell $(GO) env GOARCH)
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
LDFLAGS    := -s -w -X main.version=$(VERSION)
# urfave/cli's own man/markdown generator (and blackfriday's package init, ~0.4 ms in
# every thinbox process, the container's init included) stays out: packaging/ writes
# the man pages.
TAGS       := urfave_cli_no_docs
OUT        ?= out
IMAGE      := $(OUT)/busybox-$(ARCH).tar.gz
export CGO_ENABLED := 0

.PHONY: all thinbox demo check test vet unit fuzz integration-bins integration clean bench

all: thinbox

thinbox:
	$(GO) build -trimpath -tags $(TAGS) -ldflags '$(LDFLAGS)' -o thinbox ./cmd/thinbox

$(OUT)/thinbox-$(ARCH): FORCE
	@mkdir -p $(OUT)
	GOARCH=$(ARCH) $(GO) build -trimpath -tags $(TAGS) -ldflags '$(LDFLAGS)' -o $@ ./cmd/thinbox

$(IMAGE):
	@mkdir -p $(OUT)
	integration/busybox-image.sh $@ $(ARCH)

demo: thinbox $(IMAGE)
	integration/demo.sh ./thinbox $(IMAGE)

# Test binaries for the integration phases. host-*.test: the `integration` suite (root +
# namespaces) on this machine. guest-*.test: the same suite plus the `systemd` tests, and
# the launcher's and systemd package's own tests, where systemd is PID 1 (the qemu guest).
HOST_PKGS  := integration
GUEST_PKGS := integration launcher systemd

integration-bins: $(OUT)/thinbox-$(ARCH)
	@rm -rf $(OUT)/tests && mkdir -p $(OUT)/tests
	@for p in $(HOST_PKGS); do \
		GOARCH=$(ARCH) $(GO) test -c -tags integration -o $(OUT)/tests/host-$$p.test ./$$p || exit 1; \
	done
	@for p in $(GUEST_PKGS); do \
		GOARCH=$(ARCH) $(GO) test -c -tags integration,systemd -o $(OUT)/tests/guest-$$p.test ./$$p || exit 1; \
	done

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration,systemd ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

unit: $(IMAGE)
	integration/deps.sh
	THINBOX_TEST_IMAGE=$(abspath $(IMAGE)) $(GO) test -count=1 ./...

integration: integration-bins $(IMAGE)
	integration/run.sh --bin $(OUT)/thinbox-$(ARCH) --image $(IMAGE) --tests $(OUT)/tests --arch $(ARCH)

# check: what a change needs before it lands (minutes). test: everything, as CI runs it,
# including the Debian packages installed in the amd64 and arm64 guests.
check: vet unit fuzz integration

# Every fuzz target, briefly: a smoke run of the fuzzers, not a campaign. The seed corpora
# under testdata/fuzz run in `unit` anyway. -fuzzminimizetime bounds what would otherwise
# look like a hang at "0/sec".
FUZZTIME ?= 10s
FUZZ_TARGETS := image:FuzzUnpack units:FuzzRoundTrip systemd:FuzzLimitParse internal/names:FuzzCheck launcher/seccomp:FuzzParse
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz: $${t#*:} in ./$${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./$${t%%:*} || exit 1; \
	done

test: check deb-test lintian arm64-smoke

# Start-up, memory, size and import against crun, runc, bwrap, nspawn, podman and lxc
# (root; installs them with apt-get, boots the "bench" qemu guest). Never part of test.
# BENCH_RUNS=20 rounds by default; see benchmarks/bench.sh for the other knobs.
bench:
	GO=$(GO) benchmarks/bench.sh

clean:
	rm -rf thinbox $(OUT)

FORCE:

# ---- Debian package (issue 6; debian/README.Debian) ------------------------------------
#   deb          out/thinbox_VERSION_ARCH.deb from this tree (ARCH=arm64: cross-built)
#   lintian      that package through lintian: no error or warning left un-overridden
#   deb-test     the amd64 package installed, used (run, --unit, doctor, man, completion),
#                removed, upgraded and purged in the amd64 guest of integration/vm
#   arm64-smoke  the arm64 package, the arm64 unit tests under qemu-user and the package
#                in the arm64 guest; prints how long each step took
.PHONY: deb lintian deb-test arm64-smoke

deb:
	GO=$(GO) packaging/build-deb.sh --arch $(ARCH) --out $(OUT)

lintian: deb
	packaging/lintian.sh $(OUT)/thinbox_*_$(ARCH).deb

deb-test:
	GO=$(GO) integration/deb-test.sh --out $(OUT)

arm64-smoke:
	GO=$(GO) integration/arm64-smoke.sh --out $(OUT)
