# dkvehicled: the vehicle side of an NFC digital key.
#
#   make demo         the daemon on its simulator, driven through the story by dkctl (needs only Go)
#   make sim          the daemon on its simulator, left running for you to play with dkctl
#   make build        the shipped binaries in bin/, the daemon with PC/SC (needs libpcsclite-dev)
#   make build-nopcsc the same binaries without PC/SC (pure Go, no cgo)
#   make test         the whole test suite (needs root for the PC/SC tests: they start pcscd)
#   make story        the in-process story test, verbose
#   make bench        vehicle-side benchmarks, 10 runs each, medians with benchstat if installed
#   make bench-all    every BENCHMARKS.md figure in one run (root, ~20 min)
#   make fuzz         every fuzz target for FUZZTIME each (default 30s), summary in fuzz.log

GO       ?= go
FUZZTIME ?= 30s
BENCHCOUNT ?= 10

CMDS = ./cmd/dkvehicled ./cmd/dkctl ./cmd/dkdemo ./cmd/dkendpoint ./cmd/dkpki
SIMDIR ?= sim-run

.PHONY: all build build-nopcsc build-arm64 demo sim vet test test-go test-pcsc story bench bench-all fuzz clean

all: build

build:
	$(GO) build -tags pcsc -o bin/ $(CMDS)

build-nopcsc:
	CGO_ENABLED=0 $(GO) build -o bin/ $(CMDS)

# For a Raspberry Pi (64-bit OS): always the pure-Go build; the daemon with
# PC/SC too when the arm64 cross compiler and libpcsclite-dev:arm64 are there
# (dpkg --add-architecture arm64; apt-get install gcc-aarch64-linux-gnu libpcsclite-dev:arm64).
build-arm64:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -o bin/arm64/ $(CMDS)
	@if command -v aarch64-linux-gnu-gcc >/dev/null && [ -f /usr/lib/aarch64-linux-gnu/pkgconfig/libpcsclite.pc ]; then \
	  echo "cross-compiling the daemon with PC/SC"; \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=1 CC=aarch64-linux-gnu-gcc \
	    PKG_CONFIG_PATH=/usr/lib/aarch64-linux-gnu/pkgconfig PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig \
	    $(GO) build -tags pcsc -o bin/arm64/ ./cmd/dkvehicled; \
	else \
	  echo "no arm64 cross compiler or libpcsclite-dev:arm64: bin/arm64/dkvehicled has no PC/SC"; \
	fi

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
	test -d $(SIMDIR)/pki || bin/demo/dkpki init -dir $(SIMDIR)/pki -vehicle-key $(SIMDIR)/vehicle.key
	bin/demo/dkvehicled -config $(SIMDIR)/dkvehicled.toml

vet:
	CGO_ENABLED=0 $(GO) build ./...
	GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./cmd/...
	CGO_ENABLED=0 $(GO) vet ./...
	$(GO) vet -tags pcsc ./reader/pcsc/... ./cmd/dkvehicled/

# The README's test command. CI runs exactly this through .ci/run.
test: vet build-arm64 test-go test-pcsc

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
	$(GO) test -run '^$$' -bench . -count $(BENCHCOUNT) ./transaction/keys/ ./transaction/ ./pairing/ | tee bench.txt
	@command -v benchstat >/dev/null && benchstat bench.txt || echo "(install golang.org/x/perf/cmd/benchstat for medians)"

# Every figure of BENCHMARKS.md in one run (as root: pcscd), into bench-all/.
bench-all:
	GO=$(GO) scripts/bench-all.sh bench-all

# Every Fuzz function of every package, one after the other, FUZZTIME each;
# a line per target (time, executions, new inputs) goes to fuzz.log.
fuzz:
	GO=$(GO) scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin bench.txt bench-all fuzz.log $(SIMDIR)
