#!/bin/sh
# Every figure of BENCHMARKS.md, on this machine, in one run. Needs root (the
# PC/SC benchmarks start pcscd), pcscd with vsmartcard-vpcd, libpcsclite-dev
# and benchstat (go install golang.org/x/perf/cmd/benchstat@latest). Takes
# about 20 minutes; run it on a quiet machine.
#
#   scripts/bench-all.sh [OUTPUT_DIR]      (default bench-all/)
set -eu
out=${1:-bench-all}
go=${GO:-go}
mkdir -p "$out"
log=$out/run.txt
: >"$log"
step() {
	echo "== $*" | tee -a "$log"
	"$@" 2>&1 | tee -a "$log"
}

{
	date -u +%FT%TZ
	uname -srm
	echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
	$go version
} | tee -a "$log"

# Vehicle CPU per transaction and per pairing, and Go's own P-256 as the yardstick.
step $go test -run '^$' -bench . -count 10 ./transaction/keys/ ./transaction/ ./pairing/ >"$out/cpu.txt"
benchstat "$out/cpu.txt" | tee -a "$log"

# The ISO 14443-4 air time of each flow (the physical floor).
step $go test -count 1 -run 'TestAirTime' -v ./transaction/

# End to end: the real daemon (built without the race detector by the tests).
step $go test -run '^$' -bench 'Startup' -benchtime 20x ./cmd/dkvehicled/
step $go test -run '^$' -bench 'Idle' -benchtime 1x ./cmd/dkvehicled/
step $go test -run '^$' -bench 'PN532Tap' -benchtime 50x ./cmd/dkvehicled/
step $go test -run '^$' -bench 'SimAuthTimes' -benchtime 300x ./cmd/dkvehicled/
step $go test -run '^$' -bench 'TapUnderAbuse' -count 5 ./cmd/dkvehicled/ >"$out/abuse.txt"
benchstat "$out/abuse.txt" | tee -a "$log"
step $go test -tags pcsc -run '^$' -bench 'Transceive' -benchtime 5000x ./reader/pcsc/
step $go test -tags pcsc -run '^$' -bench 'PCSCTap' -benchtime 50x ./cmd/dkvehicled/
step $go test -tags pcsc -run '^$' -bench 'PCSCAuthTimes' -benchtime 50x ./cmd/dkvehicled/

# Binary sizes.
bin=$(mktemp -d)
$go build -tags pcsc -o "$bin/pcsc/" ./cmd/dkvehicled ./cmd/dkctl
$go build -tags pcsc -ldflags '-s -w' -o "$bin/pcsc-stripped/" ./cmd/dkvehicled
CGO_ENABLED=0 $go build -o "$bin/purego/" ./cmd/dkvehicled
GOARCH=arm64 CGO_ENABLED=0 $go build -o "$bin/arm64/" ./cmd/dkvehicled
echo "== binary sizes (bytes)" | tee -a "$log"
(cd "$bin" && ls -l pcsc/* pcsc-stripped/* purego/* arm64/* | awk '{print $5, $9}') | tee -a "$log"
rm -rf "$bin"
date -u +%FT%TZ | tee -a "$log"
