"""Python's ftplib.FTP_TLS against ftpsd's quotas: uploads, deletes, renames and the quota
commands, one line of output per step, "STEP -> REPLY", where REPLY is the server's final
reply (the lines of a multi-line reply joined with " | "). A refused step does not stop the
others.

Usage: quota_client.py STEP...
  STEP  "stor:NAME:SIZE:FILL"         STOR of SIZE bytes, each the character FILL
        "appe:NAME:SIZE:FILL"         APPE, likewise
        "stou:SIZE:FILL"              STOU, likewise
        "rest:NAME:OFFSET:SIZE:FILL"  REST OFFSET, then STOR (storbinary's rest)
        "dele:NAME", "rename:FROM:TO", "mkd:NAME", "site:WORDS", "stat", "nlst"
        "pair:NAME_A:NAME_B:SIZE:FILL_A:FILL_B"
              two logins at once: the first starts a STOR of NAME_A and sends half of
              it, the second (a new login) stores NAME_B whole, then the first sends the
              rest; prints both final replies, "A REPLY B REPLY".
        "hold:NAME:SIZE:FILL"
              STOR that sends half, prints "holding NAME", waits for a line on stdin,
              then sends the rest.
Connection settings come from FTP_HOST, FTP_PORT, FTP_USER, FTP_PASSWORD, FTP_CAFILE.
"""

import ftplib
import io
import os
import ssl
import sys

from reusing_ftp_tls import ReusingFTP_TLS


def connect():
    context = ssl.create_default_context(cafile=os.environ["FTP_CAFILE"])
    ftps = ReusingFTP_TLS(context=context, timeout=60)
    ftps.connect(os.environ["FTP_HOST"], int(os.environ["FTP_PORT"]))
    ftps.login(user=os.environ["FTP_USER"], passwd=os.environ["FTP_PASSWORD"])
    ftps.prot_p()
    return ftps


def one_line(reply):
    return " | ".join(str(reply).splitlines())


def upload(ftps, command, data, rest=None):
    """storbinary; the final reply, also when the server ends the transfer early."""
    try:
        return ftps.storbinary(command, io.BytesIO(data), rest=rest)
    except ftplib.error_perm as e:
        return str(e)
    except (OSError, EOFError):
        # The server closed the data connection before all was sent: its reply follows.
        return final_reply(ftps)


def final_reply(ftps):
    try:
        return ftps.getresp()
    except (ftplib.error_perm, ftplib.error_temp) as e:
        return str(e)


class HalfUpload:
    """A STOR whose data goes in two halves, so that something can happen in between."""

    def __init__(self, ftps, name, data):
        self.ftps = ftps
        self.data = data
        self.half = len(data) // 2
        self.reply = None
        try:
            self.conn = ftps.transfercmd(f"STOR {name}")
        except ftplib.error_perm as e:
            self.conn, self.reply = None, str(e)
            return
        self.send(data[: self.half])

    def send(self, part):
        if self.conn is None:
            return
        try:
            self.conn.sendall(part)
        except OSError:
            self.conn.close()
            self.conn = None
            self.reply = final_reply(self.ftps)

    def finish(self):
        self.send(self.data[self.half :])
        if self.conn is not None:
            try:
                self.conn.unwrap()
            except OSError:
                pass
            self.conn.close()
            self.conn = None
            self.reply = final_reply(self.ftps)
        return self.reply


def run(ftps, step):
    verb, _, rest = step.partition(":")
    args = rest.split(":")
    if verb == "stor":
        name, size, fill = args
        return upload(ftps, f"STOR {name}", fill.encode() * int(size))
    if verb == "appe":
        name, size, fill = args
        return upload(ftps, f"APPE {name}", fill.encode() * int(size))
    if verb == "stou":
        size, fill = args
        return upload(ftps, "STOU", fill.encode() * int(size))
    if verb == "rest":
        name, offset, size, fill = args
        return upload(ftps, f"STOR {name}", fill.encode() * int(size), rest=int(offset))
    if verb == "dele":
        return ftps.delete(rest)
    if verb == "rename":
        return ftps.rename(args[0], args[1])
    if verb == "mkd":
        return ftps.sendcmd(f"MKD {rest}")
    if verb == "site":
        return ftps.sendcmd(f"SITE {rest}")
    if verb == "stat":
        return ftps.sendcmd("STAT")
    if verb == "nlst":
        return " ".join(sorted(ftps.nlst()))
    if verb == "pair":
        name_a, name_b, size, fill_a, fill_b = args
        first = HalfUpload(ftps, name_a, fill_a.encode() * int(size))
        second = connect()
        reply_b = upload(second, f"STOR {name_b}", fill_b.encode() * int(size))
        second.quit()
        reply_a = first.finish()
        return f"A {one_line(reply_a)} B {one_line(reply_b)}"
    if verb == "hold":
        name, size, fill = args
        held = HalfUpload(ftps, name, fill.encode() * int(size))
        print(f"holding {name}", flush=True)
        sys.stdin.readline()
        return held.finish()
    sys.exit(f"unknown step {step}")


def main():
    ftps = connect()
    for step in sys.argv[1:]:
        try:
            reply = run(ftps, step)
        except (ftplib.error_perm, ftplib.error_temp) as e:
            reply = str(e)
        print(f"{step} -> {one_line(reply)}", flush=True)
    ftps.quit()


if __name__ == "__main__":
    main()
