"""The compatibility scenario for Python's ftplib: upload a tree, list it, download it back,
a TYPE A upload and download, rename, delete. The Rust test compares the trees and the server's disk.

Usage: compat_ftplib.py REUSE ACTIVE LOCAL DOWN PHASE
  REUSE   "reuse": data connections resume the control session's TLS session (a subclass);
          "stock": ftplib.FTP_TLS unchanged, which does not.
  ACTIVE  "active": PORT/EPRT; "passive": PASV/EPSV (ftplib's default).
  PHASE   "upload", "download" or "cleanup".
Connection settings come from FTP_HOST, FTP_PORT, FTP_USER, FTP_PASSWORD, FTP_CAFILE.
"""

import ftplib
import os
import ssl
import sys

from reusing_ftp_tls import ReusingFTP_TLS


def connect(reuse, active):
    context = ssl.create_default_context(cafile=os.environ["FTP_CAFILE"])
    context.check_hostname = False  # the test certificate names localhost, not the IP
    cls = ReusingFTP_TLS if reuse == "reuse" else ftplib.FTP_TLS
    ftps = cls(context=context, timeout=60)
    ftps.connect(os.environ["FTP_HOST"], int(os.environ["FTP_PORT"]))
    ftps.login(user=os.environ["FTP_USER"], passwd=os.environ["FTP_PASSWORD"])
    ftps.prot_p()
    ftps.set_pasv(active != "active")
    return ftps


def local_files(root):
    for dirpath, _, names in os.walk(root):
        for name in names:
            yield os.path.relpath(os.path.join(dirpath, name), root)


def upload(ftps, local):
    ftps.mkd("tree")
    made = set()
    for rel in sorted(local_files(local)):
        parts = rel.split(os.sep)[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in made:
                ftps.mkd("tree/" + d)
                made.add(d)
        with open(os.path.join(local, rel), "rb") as f:
            ftps.storbinary("STOR tree/" + rel.replace(os.sep, "/"), f)
    names = set(ftps.nlst("tree"))
    expected = {n for n in os.listdir(local)}
    assert {n.rsplit("/", 1)[-1] for n in names} == expected, (names, expected)
    facts = dict(ftps.mlsd("tree/sub", facts=["type", "size"]))
    assert facts["mib-plus-one.bin"]["size"] == "1048577", facts
    # TYPE A: storlines sends every line with CRLF; ftpsd stores LF.
    with open(os.path.join(local, "sub", "deeper", "notes.txt"), "rb") as f:
        ftps.storlines("STOR ascii.txt", f)


def download(ftps, down):
    def walk(remote):
        for name, facts in ftps.mlsd(remote):
            path = remote + "/" + name
            if facts["type"] == "dir":
                walk(path)
            elif facts["type"] == "file":
                target = os.path.join(down, os.path.relpath(path, "tree"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    ftps.retrbinary("RETR " + path, f.write)

    walk("tree")
    # TYPE A: retrlines gets the text line by line (CRLF on the wire).
    lines = []
    ftps.retrlines("RETR tree/sub/deeper/notes.txt", lines.append)
    assert lines == ["first line", "second line", "", "last line"], lines
    # The TYPE A upload, fetched in TYPE I: the stored bytes, with LF.
    chunks = []
    ftps.retrbinary("RETR ascii.txt", chunks.append)
    with open(os.path.join(down, "..", "ascii-binary.txt"), "wb") as f:
        f.write(b"".join(chunks))


def cleanup(ftps):
    ftps.delete("ascii.txt")
    ftps.rename("tree/one.bin", "tree/renamed.bin")
    assert "renamed.bin" in [n.rsplit("/", 1)[-1] for n in ftps.nlst("tree")]

    def remove(remote):
        for name, facts in ftps.mlsd(remote):
            path = remote + "/" + name
            if facts["type"] == "dir":
                remove(path)
            elif facts["type"] == "file":
                ftps.delete(path)
        ftps.rmd(remote)

    remove("tree")


def main():
    reuse, active, local, down, phase = sys.argv[1:6]
    ftps = connect(reuse, active)
    if phase == "upload":
        upload(ftps, local)
    elif phase == "download":
        download(ftps, down)
    elif phase == "cleanup":
        cleanup(ftps)
    else:
        sys.exit(f"unknown phase {phase}")
    print(ftps.quit(), file=sys.stderr)


if __name__ == "__main__":
    main()
