#!/usr/bin/env bash
# Installs the reference FTPS servers the client's interop tests run against:
#   vsftpd 3.0.3, ProFTPD 1.3.8 (+ mod_tls from proftpd-mod-crypto) and Pure-FTPd 1.0.50,
# each unpacked from its Debian package into its own directory (the packages conflict), plus
# the shared libraries they load and a test system user that vsftpd and Pure-FTPd log in as.
#
# Idempotent; run as root on a disposable CI or developer machine.
#   FTPS_REFERENCE_SERVERS  where to unpack (default: <workspace>/target/reference-servers)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${FTPS_REFERENCE_SERVERS:-$here/target/reference-servers}"
test_user=ftpstest
# Not a secret: a throw-away account that only exists for the loopback interop tests.
test_password=ftpstest-interop-pw

if [ "$(id -u)" != 0 ]; then
    echo "reference-servers.sh: must run as root (installs packages, adds a test user)" >&2
    exit 1
fi

have_all() {
    [ -x "$dest/vsftpd/usr/sbin/vsftpd" ] &&
        [ -x "$dest/proftpd/usr/sbin/proftpd" ] &&
        [ -f "$dest/proftpd/usr/lib/proftpd/mod_tls.so" ] &&
        [ -x "$dest/pure-ftpd/usr/sbin/pure-ftpd" ] &&
        [ -f /etc/pam.d/ftps-interop ] &&
        id "$test_user" >/dev/null 2>&1 &&
        command -v openssl >/dev/null
}

if ! have_all; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Runtime libraries of the three servers (from `apt-cache depends`), and the openssl CLI.
    apt-get install -y -qq --no-install-recommends \
        libcap2 libpam0g libpam-modules libpam-runtime libssl3 libwrap0 libacl1 libcrypt1 \
        libhiredis0.14 libidn2-0 libmemcached11 libmemcachedutil2 libncursesw6 \
        libpcre2-8-0 libpcre2-posix3 libsodium23 zlib1g openssl passwd >/dev/null

    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    chmod 755 "$work"
    chown _apt "$work" 2>/dev/null || true
    (cd "$work" && apt-get download -qq vsftpd proftpd-core proftpd-mod-crypto pure-ftpd)
    for name in vsftpd proftpd pure-ftpd; do
        rm -rf "${dest:?}/$name"
        mkdir -p "$dest/$name"
    done
    dpkg -x "$work"/vsftpd_*.deb "$dest/vsftpd"
    dpkg -x "$work"/proftpd-core_*.deb "$dest/proftpd"
    dpkg -x "$work"/proftpd-mod-crypto_*.deb "$dest/proftpd"
    dpkg -x "$work"/pure-ftpd_*.deb "$dest/pure-ftpd"

    # A system user with a password: vsftpd authenticates through PAM, Pure-FTPd through
    # the Unix password database, ProFTPD through an AuthUserFile that reuses its uid.
    if ! id "$test_user" >/dev/null 2>&1; then
        useradd --create-home --shell /bin/sh "$test_user"
    fi
    echo "$test_user:$test_password" | chpasswd
    # A PAM service for vsftpd that checks the Unix password and nothing else.
    printf 'auth required pam_unix.so\naccount required pam_unix.so\nsession required pam_permit.so\n' \
        >/etc/pam.d/ftps-interop
fi

# vsftpd's secure_chroot_dir must exist, be owned by root and not be writable.
mkdir -p /var/run/vsftpd/empty
chmod 755 /var/run/vsftpd/empty

cat >"$dest/README" <<INFO
Reference FTPS servers for the ftps-client interop tests (scripts/reference-servers.sh).
test user: $test_user
INFO
echo "reference servers ready in $dest"
