# thinbox — build, demo, tests, packages, benchmarks.
#
#   make            build ./thinbox
#   make demo       build, make the busybox image, run a container that shows its isolation
#   make test       every test: unit, root-on-host, and systemd in a qemu guest (as root)
#   make deb        Debian package (ARCH=arm64 for the cross build)
#   make bench      benchmarks against crun, runc, bwrap, nspawn, podman, lxc

SHELL      := /bin/bash
GO         ?= go
ARCH       ?= $(shell $(GO) env GOARCH)
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
LDFLAGS    := -s -w -X main.version=$(VERSION)
OUT        ?= out
IMAGE      := $(OUT)/busybox-$(ARCH).tar.gz
export CGO_ENABLED := 0

.PHONY: all thinbox demo test vet unit integration-bins integration clean

all: thinbox

thinbox:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o thinbox ./cmd/thinbox

$(OUT)/thinbox-$(ARCH): FORCE
	@mkdir -p $(OUT)
	GOARCH=$(ARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./cmd/thinbox

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
	THINBOX_TEST_IMAGE=$(abspath $(IMAGE)) $(GO) test -count=1 ./...

integration: integration-bins $(IMAGE)
	integration/run.sh --bin $(OUT)/thinbox-$(ARCH) --image $(IMAGE) --tests $(OUT)/tests --arch $(ARCH)

test: vet unit integration

clean:
	rm -rf thinbox $(OUT)

FORCE:
