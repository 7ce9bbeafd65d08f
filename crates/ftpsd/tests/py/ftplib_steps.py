"""Python's ftplib.FTP_TLS (with the data-session-resuming subclass) running a list of steps
against ftpsd, one line of output per step: "<step> -> OK" or "<step> -> <the server's reply>".
A refused step does not stop the others.

Usage: ftplib_steps.py STEP...
  STEP  "stor:PATH:TEXT", "retr:PATH", "list:PATH", "dele:PATH", "mkd:PATH", "rmd:PATH",
        "rename:FROM:TO"
Connection settings come from FTP_HOST, FTP_PORT, FTP_USER, FTP_PASSWORD, FTP_CAFILE.
"""

import ftplib
import io
import os
import ssl
import sys

from reusing_ftp_tls import ReusingFTP_TLS


def run(ftps, step):
    verb, _, rest = step.partition(":")
    if verb == "stor":
        path, _, text = rest.partition(":")
        ftps.storbinary(f"STOR {path}", io.BytesIO(text.encode()))
    elif verb == "retr":
        out = io.BytesIO()
        ftps.retrbinary(f"RETR {rest}", out.write)
        return out.getvalue().decode(errors="replace")
    elif verb == "list":
        ftps.retrlines(f"LIST {rest}", lambda line: None)
    elif verb == "dele":
        ftps.delete(rest)
    elif verb == "mkd":
        ftps.mkd(rest)
    elif verb == "rmd":
        ftps.rmd(rest)
    elif verb == "rename":
        old, _, new = rest.partition(":")
        ftps.rename(old, new)
    else:
        sys.exit(f"unknown step {step}")
    return None


def main():
    context = ssl.create_default_context(cafile=os.environ["FTP_CAFILE"])
    ftps = ReusingFTP_TLS(context=context, timeout=60)
    ftps.connect(os.environ["FTP_HOST"], int(os.environ["FTP_PORT"]))
    ftps.login(user=os.environ["FTP_USER"], passwd=os.environ["FTP_PASSWORD"])
    ftps.prot_p()
    for step in sys.argv[1:]:
        try:
            got = run(ftps, step)
            print(f"{step} -> OK" + (f" {got}" if got is not None else ""))
        except ftplib.error_perm as e:
            print(f"{step} -> {e}")
    ftps.quit()


if __name__ == "__main__":
    main()
