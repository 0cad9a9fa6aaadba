#!/bin/sh
# GoBGP's codec on the bytes of ../data/*.hex, for comparison with podbgp's
# `cargo bench -p bgp --bench wire`.
#
# Uses only Debian packages (bookworm: golang-go 2:1.19~1, and
# golang-github-osrg-gobgp-dev 3.10.0-1, whose pkg/packet/bgp needs nothing
# beyond Go's standard library). Builds in GOPATH mode against
# /usr/share/gocode with module fetching switched off: nothing is downloaded
# but the Debian packages themselves (installed here if missing; needs root).
#
# Usage: sh run.sh [extra go test flags]   e.g. sh run.sh -benchtime 2s
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

packages="golang-go golang-github-osrg-gobgp-dev"
missing=""
for p in $packages; do
    status=$(dpkg-query -W -f '${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing="$missing $p" ;;
    esac
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "run.sh: needs the Debian packages$missing; run as root (or apt-get install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y $missing || { apt-get update && apt-get install -y $missing; }
fi

export PATH="/usr/lib/go/bin:$PATH"
export GO111MODULE=off
export GOPATH=/usr/share/gocode
export GOFLAGS=
export GOPROXY=off
export GOSUMDB=off
export GOTOOLCHAIN=local
if [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
    export GOCACHE="${TMPDIR:-/tmp}/gobgp-bench-gocache"
fi

echo "# $(go version)"
for p in $packages; do
    echo "# $p $(dpkg-query -W -f '${Version}' "$p")"
done
echo "# GoBGP source: $(sed -n 's/^const \(MAJOR\|MINOR\|PATCH\) uint = \([0-9]*\)/\2/p' \
    /usr/share/gocode/src/github.com/osrg/gobgp/internal/pkg/version/version.go | paste -sd.)"

out="${TMPDIR:-/tmp}/gobgp-bench.$$"
trap 'rm -f "$out" "$out.rc"' EXIT
{ rc=0; go test -run . -bench . -benchmem -count 5 "$@" 2>&1 || rc=$?; echo "$rc" >"$out.rc"; } | tee "$out"
rc=$(cat "$out.rc")
if [ "$rc" != 0 ]; then
    echo "run.sh: go test failed (exit $rc)" >&2
    exit "$rc"
fi

# Median of the runs of each benchmark (ns/op, B/op, allocs/op).
echo
echo "# median of $(grep -c '^BenchmarkDecodeFullUpdate' "$out") runs"
awk '
    /^Benchmark/ {
        name = $1; sub(/-[0-9]+$/, "", name)
        if (!(name in n)) order[++names] = name
        k = ++n[name]
        for (i = 3; i < NF; i++) {
            if ($(i+1) == "ns/op") ns[name, k] = $i
            if ($(i+1) == "B/op") by[name, k] = $i
            if ($(i+1) == "allocs/op") al[name, k] = $i
        }
    }
    function median(arr, name, cnt,    i, j, t, v) {
        for (i = 1; i <= cnt; i++) v[i] = arr[name, i] + 0
        for (i = 2; i <= cnt; i++)
            for (j = i; j > 1 && v[j-1] > v[j]; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
        return cnt % 2 ? v[(cnt+1)/2] : (v[cnt/2] + v[cnt/2+1]) / 2
    }
    END {
        for (o = 1; o <= names; o++) {
            name = order[o]
            printf "%-28s %12.1f ns/op %8d B/op %6d allocs/op\n", name,
                median(ns, name, n[name]), median(by, name, n[name]), median(al, name, n[name])
        }
    }
' "$out"
