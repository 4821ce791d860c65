# dkvehicled: the vehicle side of an NFC digital key.
#
#   make build        the daemon and tools (pure Go; see build-pcsc)
#   make test         the whole test suite (needs root for the PC/SC tests: they start pcscd)
#   make story        the in-process story test, verbose
#   make bench        vehicle-side benchmarks, 10 runs each, medians with benchstat if installed
#   make fuzz         every fuzz target for FUZZTIME each (default 30s)

GO       ?= go
FUZZTIME ?= 30s
BENCHCOUNT ?= 10

.PHONY: all build build-pcsc vet test test-go test-pcsc story bench fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build ./...

build-pcsc:
	$(GO) build -tags pcsc ./...

vet:
	CGO_ENABLED=0 $(GO) vet ./...
	$(GO) vet -tags pcsc ./reader/pcsc/...

# The README's test command. CI runs exactly this through .ci/run.
test: vet build test-go test-pcsc

test-go:
	$(GO) test -race -count=1 ./...

# Real pcscd with the vsmartcard virtual readers; the tests start and stop pcscd themselves.
test-pcsc:
	$(GO) test -race -count=1 -tags pcsc ./reader/pcsc/...

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
	rm -rf bin bench.txt
