"""Python's ftplib (FTP_TLS with the subclass whose data connections resume the control
connection's TLS, or plain FTP) logging in with USER and PASS as given, then running steps,
one line of output per step: "<step> -> OK[ <result>]" or "<step> -> <the server's reply>".
A refused step does not stop the others.

The password is sent exactly as given, an empty one included (ftplib's own login would
replace an empty anonymous password with "anonymous@"). The first line is
"login -> <the reply to PASS>"; a refused login prints "refused: <reply>" and exits with
status 3.

Usage: login_steps.py STEP...
  STEP  "stor:PATH:TEXT", "retr:PATH" (prints the content), "list:PATH" (prints the names
        of the LIST lines, sorted, directories with a trailing "/"), "nlst:PATH" (prints the
        NLST names, sorted), "cwd:PATH", "pwd" (prints the directory), "dele:PATH",
        "mkd:PATH", "rmd:PATH", "rename:FROM:TO", "quote:LINE" (prints the reply to LINE)
Connection settings come from FTP_HOST, FTP_PORT, FTP_USER, FTP_PASSWORD, FTP_CAFILE;
FTP_PLAIN=1 logs in without AUTH TLS.
"""

import ftplib
import io
import os
import ssl
import sys

from reusing_ftp_tls import ReusingFTP_TLS


def connect():
    plain = os.environ.get("FTP_PLAIN") == "1"
    if plain:
        ftp = ftplib.FTP(timeout=60)
    else:
        context = ssl.create_default_context(cafile=os.environ["FTP_CAFILE"])
        ftp = ReusingFTP_TLS(context=context, timeout=60)
    try:
        ftp.connect(os.environ["FTP_HOST"], int(os.environ["FTP_PORT"]))
        if not plain:
            ftp.auth()
        reply = ftp.sendcmd(f"USER {os.environ['FTP_USER']}")
        if reply.startswith("3"):
            reply = ftp.sendcmd(f"PASS {os.environ['FTP_PASSWORD']}")
    except (ftplib.error_perm, ftplib.error_temp) as e:
        print(f"refused: {e}")
        sys.exit(3)
    except (OSError, EOFError) as e:
        print(f"refused: connection failed: {type(e).__name__}: {e}")
        sys.exit(3)
    print(f"login -> {reply}", flush=True)
    if not plain:
        ftp.prot_p()
    return ftp


def listed_names(ftp, path):
    lines = []
    ftp.retrlines(f"LIST {path}".rstrip(), lines.append)
    names = []
    for line in lines:
        name = line.split(None, 8)[-1]
        names.append(name + "/" if line.startswith("d") else name)
    return ",".join(sorted(names))


def run(ftp, step):
    verb, _, rest = step.partition(":")
    if verb == "stor":
        path, _, text = rest.partition(":")
        ftp.storbinary(f"STOR {path}", io.BytesIO(text.encode()))
    elif verb == "retr":
        out = io.BytesIO()
        ftp.retrbinary(f"RETR {rest}", out.write)
        return out.getvalue().decode(errors="replace")
    elif verb == "list":
        return listed_names(ftp, rest)
    elif verb == "nlst":
        return ",".join(sorted(ftp.nlst(*([rest] if rest else []))))
    elif verb == "cwd":
        ftp.cwd(rest)
    elif verb == "pwd":
        return ftp.pwd()
    elif verb == "dele":
        ftp.delete(rest)
    elif verb == "mkd":
        ftp.mkd(rest)
    elif verb == "rmd":
        ftp.rmd(rest)
    elif verb == "rename":
        old, _, new = rest.partition(":")
        ftp.rename(old, new)
    else:
        sys.exit(f"unknown step {step}")
    return None


def outcome(ftp, step):
    """What follows "->" for `step`."""
    try:
        if step.startswith("quote:"):
            return ftp.sendcmd(step.partition(":")[2])
        got = run(ftp, step)
        return "OK" + (f" {got}" if got is not None else "")
    except ftplib.Error as e:
        return str(e)


def main():
    ftp = connect()
    for step in sys.argv[1:]:
        print(f"{step} -> {outcome(ftp, step)}", flush=True)
    try:
        ftp.quit()
    except (ftplib.Error, OSError, EOFError):
        pass


if __name__ == "__main__":
    main()
