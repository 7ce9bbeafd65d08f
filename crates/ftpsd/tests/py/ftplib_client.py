"""Python's ftplib.FTP_TLS against ftpsd, as in the usual example: login, prot_p,
storbinary, retrbinary, retrlines('LIST'), quit.

Usage: ftplib_client.py MODE PHASE [ARGS...]
  MODE  "seed": ftplib.FTP_TLS unchanged (its data connections do not resume the control
        session's TLS session); "reuse": a subclass whose data connections do.
  PHASE "upload FILE...", "list", "download DIR NAME...", "delete NAME..."
Connection settings come from FTP_HOST, FTP_PORT, FTP_USER, FTP_PASSWORD, FTP_CAFILE.
"""

import ftplib
import os
import ssl
import sys

from reusing_ftp_tls import ReusingFTP_TLS


def connect(mode):
    context = ssl.create_default_context(cafile=os.environ["FTP_CAFILE"])
    cls = ftplib.FTP_TLS if mode == "seed" else ReusingFTP_TLS
    ftps = cls(context=context, timeout=120)
    ftps.connect(os.environ["FTP_HOST"], int(os.environ["FTP_PORT"]))
    ftps.login(user=os.environ["FTP_USER"], passwd=os.environ["FTP_PASSWORD"])
    ftps.prot_p()  # Secure the data connection
    return ftps


def main():
    mode, phase, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    ftps = connect(mode)
    if phase == "upload":
        for path in args:
            with open(path, "rb") as file:
                ftps.storbinary(f"STOR {os.path.basename(path)}", file)
    elif phase == "list":
        ftps.retrlines("LIST")
    elif phase == "download":
        out_dir = args[0]
        for name in args[1:]:
            with open(os.path.join(out_dir, name), "wb") as file:
                ftps.retrbinary(f"RETR {name}", file.write)
    elif phase == "delete":
        for name in args:
            ftps.delete(name)
        ftps.retrlines("LIST")
    else:
        sys.exit(f"unknown phase {phase}")
    print(ftps.quit(), file=sys.stderr)


if __name__ == "__main__":
    main()
