#!/usr/bin/env bash
# Download throughput of `ftps get` against curl from the same server, in one run.
#
#   bench/client-vs-curl.sh [--server ftpsd|vsftpd] [--runs N] [--delay-ms MS]
#                           [--before FTPS_BINARY] [SIZE_MIB]
#
#   --server ftpsd    (default) ftpsd from this workspace, release build
#   --server vsftpd   vsftpd 3.0.3 from scripts/reference-servers.sh (run it first, as root)
#   --runs N          downloads per client, alternating; the best run of each is compared
#                     (default 3)
#   --delay-ms MS     put a delaying TCP relay between the clients and the server: every
#                     byte takes MS milliseconds each way and each connection has at most
#                     256 KiB in flight, like a long link whose window one connection cannot
#                     fill. Then `ftps get --segments 4` is measured too. (`tc netem` would
#                     be the usual tool; the relay needs no kernel module.)
#   --no-build        use the release binaries as they are in the target directory
#   --before BINARY   also measure this ftps binary (an older build), as "ftps (before)"
#   FTPS_BIN, FTPSD_BIN (environment): binaries to use instead of the release builds
#   SIZE_MIB          file size (default 1024: a 1 GiB file; 64 is plenty with --delay-ms)
#
# Builds release binaries, creates the file on tmpfs, downloads it with curl (OpenSSL,
# explicit FTPS, TLS session reuse) and with ftps (both to tmpfs), checks every hash, and
# prints MiB/s for each run, the best of each, and the ratio ftps/curl. Not part of the
# test suite.
set -euo pipefail

server=ftpsd
runs=3
delay_ms=0
before_bin=""
build=yes
size_mib=1024
while [ $# -gt 0 ]; do
    case "$1" in
        --server) server="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --delay-ms) delay_ms="$2"; shift 2 ;;
        --before) before_bin="$2"; shift 2 ;;
        --no-build) build=no; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) size_mib="$1"; shift ;;
    esac
done
case "$server" in ftpsd|vsftpd) ;; *) echo "--server ftpsd or vsftpd" >&2; exit 2 ;; esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

[ "$build" = yes ] && cargo build --release --quiet -p ftps -p ftpsd
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
ftps_bin="${FTPS_BIN:-$target_dir/release/ftps}"
ftpsd_bin="${FTPSD_BIN:-$target_dir/release/ftpsd}"

shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm="${TMPDIR:-/tmp}"
work="$(mktemp -d -p "$shm" ftps-bench.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2; return 1
}

mkdir -p "$work/data"
echo "creating a ${size_mib} MiB file on $shm ..."
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$work/data/big.bin"
want="$(sha256sum "$work/data/big.bin" | cut -d' ' -f1)"

# Passive ports are fixed so that the delaying relay can forward them.
pasv_min=$(( 40000 + RANDOM % 20000 ))
pasv_max=$(( pasv_min + 15 ))

case "$server" in
ftpsd)
    user=bench
    password="bench-password-$$"
    remote_path=/big.bin
    printf '%s' "$password" | "$ftpsd_bin" user add bench --root "$work/data" --state-dir "$work/state" --password-stdin >/dev/null
    port="$(free_port)"
    cat >"$work/ftpsd.toml" <<EOF
state_dir = "$work/state"
listen = ["127.0.0.1:$port"]
implicit_listen = []

[passive]
ports = "$pasv_min-$pasv_max"
EOF
    "$ftpsd_bin" --config "$work/ftpsd.toml" >"$work/ftpsd.out" 2>"$work/ftpsd.err" &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q "listening explicit" "$work/ftpsd.out" 2>/dev/null && break
        sleep 0.1
    done
    fingerprint="$(sed -n 's/.*fingerprint: \([0-9A-F:]*\).*/\1/p' "$work/ftpsd.out" | head -1)"
    [ -n "$fingerprint" ] || { echo "ftpsd did not start:" >&2; cat "$work/ftpsd.err" >&2; exit 1; }
    ;;
vsftpd)
    ref="${FTPS_REFERENCE_SERVERS:-$target_dir/reference-servers}"
    vsftpd_bin="$ref/vsftpd/usr/sbin/vsftpd"
    [ -x "$vsftpd_bin" ] || { echo "$vsftpd_bin is missing: run scripts/reference-servers.sh first" >&2; exit 1; }
    # The test user and PAM service that scripts/reference-servers.sh sets up.
    user=ftpstest
    password=ftpstest-interop-pw
    # Relative to the login directory (local_root): curl's URL paths are, ftps's /~/ is.
    remote_path=/~/big.bin
    chown -R "$user" "$work/data"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
        -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
    fingerprint="$(openssl x509 -in "$work/cert.pem" -noout -fingerprint -sha256 | sed 's/.*=//')"
    port="$(free_port)"
    mkdir -p /var/run/vsftpd/empty
    cat >"$work/vsftpd.conf" <<EOF
listen=YES
listen_address=127.0.0.1
listen_port=$port
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
pam_service_name=ftps-interop
local_root=$work/data
userlist_enable=NO
ssl_enable=YES
rsa_cert_file=$work/cert.pem
rsa_private_key_file=$work/key.pem
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=YES
ssl_ciphers=HIGH
seccomp_sandbox=NO
pasv_enable=YES
pasv_min_port=$pasv_min
pasv_max_port=$pasv_max
max_per_ip=0
max_clients=0
xferlog_enable=NO
EOF
    "$vsftpd_bin" "$work/vsftpd.conf" >"$work/vsftpd.out" 2>&1 &
    pids+=($!)
    wait_port "$port"
    ;;
esac

# The address the clients use: the server, or the delaying relay in front of it.
client_ip=127.0.0.1
if [ "$delay_ms" != 0 ]; then
    client_ip=127.0.0.2
    cat >"$work/relay.py" <<'EOF'
# A TCP relay that delays every byte by DELAY seconds each way and keeps at most WINDOW
# bytes in flight per direction of each connection: a long link one TCP window cannot fill.
import asyncio, sys, time
listen_ip, target_ip, delay, ports = sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000, sys.argv[4:]
WINDOW = 256 << 10

async def pump(reader, writer):
    queue, room = asyncio.Queue(), asyncio.Semaphore(WINDOW // 65536)
    async def send():
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if chunk is None:
                break
            writer.write(chunk)
            await writer.drain()
            room.release()
        try:
            writer.write_eof()
        except OSError:
            pass
    sender = asyncio.ensure_future(send())
    try:
        while True:
            await room.acquire()
            chunk = await reader.read(65536)
            queue.put_nowait((time.monotonic() + delay, chunk or None))
            if not chunk:
                break
    except OSError:
        queue.put_nowait((time.monotonic(), None))
    await sender

async def serve(port):
    async def handle(r1, w1):
        try:
            r2, w2 = await asyncio.open_connection(target_ip, port)
        except OSError:
            w1.close(); return
        await asyncio.gather(pump(r1, w2), pump(r2, w1), return_exceptions=True)
        w1.close(); w2.close()
    await asyncio.start_server(handle, listen_ip, port)

async def main():
    for p in ports:
        await serve(int(p))
    print("relay ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
EOF
    python3 "$work/relay.py" "$client_ip" 127.0.0.1 "$delay_ms" "$port" $(seq "$pasv_min" "$pasv_max") >"$work/relay.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q ready "$work/relay.out" && break; sleep 0.1; done
fi

now() { date +%s.%N; }
rate() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", b / 1048576 / t }'; }
bytes=$((size_mib * 1024 * 1024))

check() {
    [ "$(sha256sum "$2" | cut -d' ' -f1)" = "$want" ] || { echo "$1: hash mismatch" >&2; exit 1; }
    rm -f "$2"
}

run_curl() {
    curl --silent --show-error --ssl-reqd --insecure --user "$user:$password" \
        "ftp://$client_ip:$port/big.bin" --output "$work/curl.out"
    check curl "$work/curl.out"
}

run_ftps() { run_bin "$ftps_bin" "$@"; }
run_before() { run_bin "$before_bin"; }

run_bin() {
    local bin="$1"; shift
    printf '%s' "$password" | "$bin" get --quiet --password-stdin --no-netrc --pin-sha256 "$fingerprint" \
        "$@" "ftpes://$user@$client_ip:$port$remote_path" "$work/ftps.out"
    check ftps "$work/ftps.out"
}

timed() {
    local t0 t1
    t0=$(now)
    "$@"
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

best() { printf '%s\n' "$@" | sort -g | head -1; }

curl_times=(); ftps_times=(); seg_times=(); before_times=()
for i in $(seq "$runs"); do
    c=$(timed run_curl); curl_times+=("$c")
    f=$(timed run_ftps); ftps_times+=("$f")
    line="run $i: curl $(rate "$bytes" "$c") MiB/s, ftps $(rate "$bytes" "$f") MiB/s"
    if [ -n "$before_bin" ]; then
        b=$(timed run_before); before_times+=("$b")
        line="$line, ftps (before) $(rate "$bytes" "$b") MiB/s"
    fi
    if [ "$delay_ms" != 0 ]; then
        s=$(timed run_ftps --segments 4); seg_times+=("$s")
        line="$line, ftps --segments 4 $(rate "$bytes" "$s") MiB/s"
    fi
    echo "$line"
done

curl_s=$(best "${curl_times[@]}")
ftps_s=$(best "${ftps_times[@]}")
curl_rate=$(rate "$bytes" "$curl_s")
ftps_rate=$(rate "$bytes" "$ftps_s")
link="127.0.0.1"
[ "$delay_ms" != 0 ] && link="a relay adding ${delay_ms} ms each way, 256 KiB in flight per connection"
echo "file:  ${size_mib} MiB from $server over $link (tmpfs to tmpfs), best of $runs"
echo "curl:  ${curl_rate} MiB/s (${curl_s} s)"
echo "ftps:  ${ftps_rate} MiB/s (${ftps_s} s)"
if [ -n "$before_bin" ]; then
    before_s=$(best "${before_times[@]}")
    echo "ftps (before):  $(rate "$bytes" "$before_s") MiB/s (${before_s} s)"
fi
if [ "$delay_ms" != 0 ]; then
    seg_s=$(best "${seg_times[@]}")
    echo "ftps --segments 4:  $(rate "$bytes" "$seg_s") MiB/s (${seg_s} s)"
fi
awk -v f="$ftps_rate" -v c="$curl_rate" 'BEGIN { printf "ratio ftps/curl: %.2f\n", f / c }'
