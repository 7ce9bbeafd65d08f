#!/usr/bin/env bash
# Download throughput of `ftps get` against curl, both from ftpsd on loopback, in one run.
#
#   bench/client-vs-curl.sh [SIZE_MIB]      (default 1024: a 1 GiB file)
#
# Builds release binaries, starts ftpsd with its data on tmpfs, downloads the same file with
# curl (OpenSSL, explicit FTPS, TLS session reuse) and with ftps (both to tmpfs), checks the
# hashes, and prints MiB/s for each and the ratio ftps/curl. Not part of the test suite.
set -euo pipefail

size_mib="${1:-1024}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

cargo build --release --quiet -p ftps -p ftpsd
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
ftps_bin="$target_dir/release/ftps"
ftpsd_bin="$target_dir/release/ftpsd"

shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm="${TMPDIR:-/tmp}"
work="$(mktemp -d -p "$shm" ftps-bench.XXXXXX)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/data"
echo "creating a ${size_mib} MiB file on $shm ..."
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/data/big.bin"
want="$(sha256sum "$work/data/big.bin" | cut -d' ' -f1)"

password="bench-password-$$"
printf '%s' "$password" | "$ftpsd_bin" user add bench --root "$work/data" --state-dir "$work/state" --password-stdin >/dev/null
"$ftpsd_bin" --state-dir "$work/state" --listen 127.0.0.1:0 --no-implicit >"$work/ftpsd.out" 2>"$work/ftpsd.err" &
server_pid=$!
for _ in $(seq 100); do
    grep -q "listening explicit" "$work/ftpsd.out" 2>/dev/null && break
    sleep 0.1
done
port="$(sed -n 's/.*listening explicit 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/ftpsd.out" | head -1)"
fingerprint="$(sed -n 's/.*fingerprint: \([0-9A-F:]*\).*/\1/p' "$work/ftpsd.out" | head -1)"
[ -n "$port" ] || { echo "ftpsd did not start:" >&2; cat "$work/ftpsd.err" >&2; exit 1; }

now() { date +%s.%N; }
rate() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", b / 1048576 / t }'; }
bytes=$((size_mib * 1024 * 1024))

echo "curl: downloading ..."
t0=$(now)
curl --silent --show-error --ssl-reqd --insecure --user "bench:$password" \
    "ftp://127.0.0.1:$port/big.bin" --output "$work/curl.out"
t1=$(now)
curl_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
[ "$(sha256sum "$work/curl.out" | cut -d' ' -f1)" = "$want" ] || { echo "curl: hash mismatch" >&2; exit 1; }
rm -f "$work/curl.out"

echo "ftps: downloading ..."
t0=$(now)
printf '%s' "$password" | "$ftps_bin" get --quiet --password-stdin --no-netrc --pin-sha256 "$fingerprint" \
    "ftpes://bench@127.0.0.1:$port/big.bin" "$work/ftps.out"
t1=$(now)
ftps_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
[ "$(sha256sum "$work/ftps.out" | cut -d' ' -f1)" = "$want" ] || { echo "ftps: hash mismatch" >&2; exit 1; }

curl_rate=$(rate "$bytes" "$curl_s")
ftps_rate=$(rate "$bytes" "$ftps_s")
echo "file:  ${size_mib} MiB from ftpsd on 127.0.0.1 (tmpfs to tmpfs)"
echo "curl:  ${curl_rate} MiB/s (${curl_s} s)"
echo "ftps:  ${ftps_rate} MiB/s (${ftps_s} s)"
awk -v f="$ftps_rate" -v c="$curl_rate" 'BEGIN { printf "ratio ftps/curl: %.2f\n", f / c }'
