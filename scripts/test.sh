#!/usr/bin/env bash
# The test command: installs the FTP clients the integration tests drive (as root on
# Debian, only what is missing), starts the reference servers if their script exists,
# installs Garage (the S3 server) if missing, and runs every test of the workspace. Safe to
# run again; exits non-zero if any test fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian package for each program the tests run.
declare -A package=([curl]=curl [lftp]=lftp [python3]=python3 [rclone]=rclone [openssl]=openssl [strace]=strace
    [systemd-analyze]=systemd [groff]=groff-base [webalizer]=webalizer [fail2ban-regex]=fail2ban [haproxy]=haproxy)
missing=()
for program in "${!package[@]}"; do
    command -v "$program" >/dev/null 2>&1 || missing+=("${package[$program]}")
done
# PostgreSQL for the tests of users in a database and of the fleet: its programs only (they
# are not on PATH); the tests run private clusters on loopback (crates/ftps-testkit/src/postgres.rs).
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    missing+=(postgresql)
fi
# venv for the Python package's tests (crates/ftps-python: pip installs it into a venv).
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if ((${#missing[@]} > 0)); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        if [[ " ${missing[*]} " == *" postgresql "* && ! -e /etc/postgresql-common/createcluster.conf ]]; then
            # No cluster of the system's own, started at install and left running.
            mkdir -p /etc/postgresql-common
            echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
        fi
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
    else
        echo "missing programs for the tests: ${missing[*]}" >&2
        echo "install them (Debian: apt-get install ${missing[*]}) or run this script as root" >&2
        exit 1
    fi
fi

if [[ -f scripts/reference-servers.sh ]]; then
    bash scripts/reference-servers.sh
fi

# Garage, the S3 server the S3-backed users are tested on (crates/ftpsd/tests/s3.rs starts
# it on loopback). Built once (about 8 minutes on 2 cores), only when missing.
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v garage >/dev/null 2>&1; then
    echo "installing garage"
    cargo install garage --locked --quiet --no-default-features \
        --features bundled-libs,lmdb,sqlite
fi

# --no-fail-fast: one failing test binary must not hide the results of the others.
started=$SECONDS
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
echo "tests took $((SECONDS - started)) s"

# The same protocol, interoperability and security suites again, with every test user's
# files in Garage (FTPSD_TEST_STORAGE=s3: each test binary starts one Garage on loopback and
# stops it when it ends). Tests that need a local file system by nature are skipped by name,
# each with its reason, in crates/ftpsd/tests/s3-local-only.txt.
started=$SECONDS
for suite in protocol commands files security security_more curl lftp ftplib rclone compat policy permissions quotas folders anonymous; do
    skips=()
    while read -r file name _; do
        [[ $file == "$suite" ]] && skips+=(--skip "$name")
    done < <(grep -v '^#' crates/ftpsd/tests/s3-local-only.txt)
    echo "== $suite on S3 storage ($((${#skips[@]} / 2)) local-only tests skipped)"
    set +e
    FTPSD_TEST_STORAGE=s3 cargo test -p ftpsd --locked --test "$suite" -- --exact "${skips[@]}" 2>&1 | tee -a "$log"
    ((PIPESTATUS[0] == 0)) || status=1
    set -e
done
echo "S3 runs took $((SECONDS - started)) s"

# The benchmark's smoke run, so the harness cannot rot: every workload must complete
# without errors; it asserts nothing about timings.
bash bench/run.sh --quick || status=$?
bash bench/run.sh s3 --quick || status=$?

# Every fuzz target for a bounded time (fuzz/README.md); a crash fails the run.
bash scripts/fuzz.sh 20 || status=$?

# One closing line with the totals of every test binary (cargo prints a line per binary,
# and the last one, the doc-tests', counts none).
awk '/^test result:/ {
        for (i = 2; i <= NF; i++) {
            if ($i ~ /^passed/) passed += $(i - 1)
            if ($i ~ /^failed/) failed += $(i - 1)
        }
     }
     END { printf "tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
