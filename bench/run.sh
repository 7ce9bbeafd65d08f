#!/usr/bin/env bash
# The FTPS benchmark in one command: ftpsd, vsftpd and Pure-FTPd side by side on loopback,
# plus a raw-TLS ceiling; prints the markdown tables of docs/performance.md: the main one
# (transfers, small files with server CPU per operation, logins, idle sessions), real clients
# (curl and lftp as subprocesses) and scale under load (10,000 sessions, 500 busy).
#
#   bash bench/run.sh                  # full run, every table (release build; 15-25 minutes)
#   bash bench/run.sh --quick          # smoke run: every workload with tiny sizes, debug build,
#                                      # about two minutes; fails only if a workload fails
#   bash bench/run.sh --out table.md   # other flags go to ftps-bench (--help lists them)
#   bash bench/run.sh s3               # ftpsd on Garage beside direct S3 clients (docs/storage.md)
#
# As root it first installs the reference servers (scripts/reference-servers.sh, when that
# script exists); without them only ftpsd and the raw-TLS ceiling are measured.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

profile=release
for arg in "$@"; do
    [[ $arg == --quick ]] && profile=debug
done
profile=${FTPS_BENCH_PROFILE:-$profile}

if [[ -f scripts/reference-servers.sh && $(id -u) -eq 0 ]]; then
    bash scripts/reference-servers.sh >&2 || echo "bench: reference servers unavailable" >&2
    # The reference figures are for sha512-crypt (about 1.25 ms a check), but Debian 12's
    # chpasswd stores yescrypt, which costs more: hash the benchmark account's password
    # with sha512-crypt so its servers are measured as configured in production guides.
    if id ftpstest >/dev/null 2>&1 && ! grep -q '^ftpstest:\$6\$' /etc/shadow; then
        echo 'ftpstest:ftpstest-interop-pw' | chpasswd -c SHA512
    fi
fi

if [[ $profile == release ]]; then
    cargo build --release --locked -p ftpsd -p ftps-bench >&2
else
    cargo build --locked -p ftpsd -p ftps-bench >&2
fi

# 10,000 sessions need about as many descriptors in the server and in the load generator:
# raised here, for this run only, never in ftpsd's defaults.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec "target/$profile/ftps-bench" "$@"
