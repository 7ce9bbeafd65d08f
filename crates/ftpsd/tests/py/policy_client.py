"""Python's ftplib.FTP_TLS against ftpsd's address rules and per-user limits.

Usage: policy_client.py PHASE [ARGS...]
  PHASE "login": log in, PROT P, list; prints "logged in" and the listing's names.
        "uploads SPEC...": log in, then one upload per SPEC, "VERB:NAME:SIZE[:REST]"
        (VERB is STOR, APPE or STOU; NAME is empty for STOU; REST sends REST first). The
        bytes of the Nth SPEC (from 0) are SIZE times the letter chr(ord('a') + N). Prints
        one line per SPEC: "VERB NAME -> REPLY".
A refused login prints "refused: REPLY" and exits with status 3.
Connection settings come from FTP_HOST, FTP_PORT, FTP_USER, FTP_PASSWORD, FTP_CAFILE and,
when set, FTP_SOURCE (the local address to connect from, for the data connections too).
"""

import ftplib
import io
import os
import ssl
import sys

from reusing_ftp_tls import ReusingFTP_TLS


def connect():
    context = ssl.create_default_context(cafile=os.environ["FTP_CAFILE"])
    source = os.environ.get("FTP_SOURCE")
    ftps = ReusingFTP_TLS(
        context=context,
        timeout=120,
        source_address=(source, 0) if source else None,
    )
    try:
        ftps.connect(os.environ["FTP_HOST"], int(os.environ["FTP_PORT"]))
        ftps.login(user=os.environ["FTP_USER"], passwd=os.environ["FTP_PASSWORD"])
    except (ftplib.error_perm, ftplib.error_temp) as e:
        print(f"refused: {e}")
        sys.exit(3)
    except (OSError, EOFError) as e:
        print(f"refused: connection failed: {type(e).__name__}: {e}")
        sys.exit(3)
    ftps.prot_p()
    return ftps


def upload(ftps, verb, name, data, rest):
    """One upload; the final reply, also when the server ends the transfer early."""
    command = f"{verb} {name}" if name else verb
    try:
        return ftps.storbinary(command, io.BytesIO(data), rest=rest)
    except ftplib.error_perm as e:
        return str(e)
    except (OSError, EOFError):
        # The server closed the data connection before all was sent: its reply follows.
        try:
            return ftps.getresp()
        except ftplib.error_perm as e:
            return str(e)


def main():
    phase, args = sys.argv[1], sys.argv[2:]
    ftps = connect()
    if phase == "login":
        print("logged in")
        for name in ftps.nlst():
            print(name)
    elif phase == "uploads":
        for n, spec in enumerate(args):
            verb, name, size, *rest = spec.split(":")
            data = bytes([ord("a") + n % 26]) * int(size)
            reply = upload(ftps, verb, name, data, int(rest[0]) if rest else None)
            print(f"{verb} {name} -> {reply}", flush=True)
    else:
        sys.exit(f"unknown phase {phase}")
    print(ftps.quit(), file=sys.stderr)


if __name__ == "__main__":
    main()
