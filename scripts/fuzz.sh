#!/bin/sh
# Runs fuzz targets one after the other and records, for each, the time it
# ran, the executions and the corpus growth that `go test -fuzz` reported.
#
#   scripts/fuzz.sh [FUZZTIME [PACKAGE.Target ...]]
#
# FUZZTIME defaults to 30s; with no targets, every Fuzz function of every
# package runs. FUZZPARALLEL (default: all cores) sets the workers, FUZZLOG
# (default fuzz.log) where the summary lines go, FUZZMINIMIZE (default 10s)
# how long to minimize each new input. New interesting inputs stay
# in Go's fuzz cache ($(go env GOCACHE)/fuzz); inputs that fail are written
# to the package's testdata/fuzz and the script stops.
set -eu
fuzztime=${1:-30s}
[ $# -gt 0 ] && shift
log=${FUZZLOG:-fuzz.log}
par=${FUZZPARALLEL:-$(nproc)}
go=${GO:-go}
module=$($go list -m)

targets="$*"
if [ -z "$targets" ]; then
	for pkg in $($go list ./...); do
		for f in $($go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
			targets="$targets ${pkg#"$module"/}.$f"
		done
	done
fi

for t in $targets; do
	pkg=./${t%.*}
	f=${t##*.}
	echo "== $pkg $f ($fuzztime, $par workers)"
	out=$(mktemp)
	if $go test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" -fuzzminimizetime "${FUZZMINIMIZE:-10s}" -parallel "$par" "$pkg" >"$out" 2>&1; then
		result=ok
	else
		result=FAIL
	fi
	last=$(grep 'fuzz: elapsed' "$out" | tail -n 1 || true)
	printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$par" "$result" "$last" >>"$log"
	tail -n 3 "$out"
	if [ "$result" = FAIL ]; then
		cat "$out"
		rm -f "$out"
		exit 1
	fi
	rm -f "$out"
done
