# dkvehicled: the vehicle side of an NFC digital key.
#
#   make demo         the daemon on its simulator, driven through the story by dkctl (needs only Go)
#   make sim          the daemon on its simulator, left running for you to play with dkctl
#   make build        the shipped binaries in bin/, the daemon with PC/SC (needs libpcsclite-dev)
#   make build-nopcsc the same binaries without PC/SC (pure Go, no cgo)
#   make test         the whole test suite (needs root for the PC/SC tests: they start pcscd)
#   make story        the in-process story test, verbose
#   make bench        vehicle-side benchmarks, 10 runs each, medians with benchstat if installed
#   make fuzz         every fuzz target for FUZZTIME each (default 30s)

GO       ?= go
FUZZTIME ?= 30s
BENCHCOUNT ?= 10

CMDS = ./cmd/dkvehicled ./cmd/dkctl ./cmd/dkdemo
SIMDIR ?= sim-run

.PHONY: all build build-nopcsc demo sim vet test test-go test-pcsc story bench fuzz clean

all: build

build:
	$(GO) build -tags pcsc -o bin/ $(CMDS)

build-nopcsc:
	CGO_ENABLED=0 $(GO) build -o bin/ $(CMDS)

demo:
	CGO_ENABLED=0 $(GO) build -o bin/demo/ $(CMDS)
	bin/demo/dkdemo -config configs/simulator.toml

# Leaves the daemon in the foreground; in another terminal:
#   bin/demo/dkctl -socket $(SIMDIR)/control.sock sim phone new owner   (and so on; see README.md)
sim:
	CGO_ENABLED=0 $(GO) build -o bin/demo/ $(CMDS)
	mkdir -p $(SIMDIR)
	test -f $(SIMDIR)/dkvehicled.toml || cp configs/simulator.toml $(SIMDIR)/dkvehicled.toml
	test -f $(SIMDIR)/vehicle.key || bin/demo/dkvehicled -init-key $(SIMDIR)/vehicle.key
	bin/demo/dkvehicled -config $(SIMDIR)/dkvehicled.toml

vet:
	CGO_ENABLED=0 $(GO) build ./...
	GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./cmd/...
	CGO_ENABLED=0 $(GO) vet ./...
	$(GO) vet -tags pcsc ./reader/pcsc/... ./cmd/dkvehicled/

# The README's test command. CI runs exactly this through .ci/run.
test: vet test-go test-pcsc

test-go:
	$(GO) test -race -count=1 ./...

# Real pcscd with the vsmartcard virtual readers; the tests start and stop pcscd
# themselves, so the two packages run one after the other.
test-pcsc:
	$(GO) test -race -count=1 -tags pcsc ./reader/pcsc/...
	$(GO) test -race -count=1 -tags pcsc -run PCSC ./cmd/dkvehicled/

story:
	$(GO) test -count=1 -run 'TestStory' -v ./transaction/

bench:
	$(GO) test -run '^$$' -bench . -count $(BENCHCOUNT) ./transaction/ | tee bench.txt
	@command -v benchstat >/dev/null && benchstat bench.txt || echo "(install golang.org/x/perf/cmd/benchstat for medians)"

# Every Fuzz function of every package, one after the other.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin bench.txt $(SIMDIR)
