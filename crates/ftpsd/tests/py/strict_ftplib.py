"""Many uploads in one session over TLS 1.3 with Python's ftplib and the README's subclass,
whose data connections resume the control connection's TLS session.

Usage: strict_ftplib.py COUNT DIR
  Uploads COUNT files named up-N.bin into DIR (created), lists DIR, then downloads every
  file and compares it with what was sent.
Connection settings come from FTP_HOST, FTP_PORT, FTP_USER, FTP_PASSWORD.
"""

import io
import os
import ssl
import sys

from reusing_ftp_tls import ReusingFTP_TLS


def content(i):
    return (b"upload %d\n" % i) * (i % 50 + 1)


def main():
    count, directory = int(sys.argv[1]), sys.argv[2]
    context = ssl.create_default_context()
    context.check_hostname = False  # self-signed test certificates
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    ftps = ReusingFTP_TLS(context=context, timeout=60)
    ftps.connect(os.environ["FTP_HOST"], int(os.environ["FTP_PORT"]))
    ftps.login(user=os.environ["FTP_USER"], passwd=os.environ["FTP_PASSWORD"])
    ftps.prot_p()
    ftps.mkd(directory)
    for i in range(count):
        ftps.storbinary("STOR %s/up-%d.bin" % (directory, i), io.BytesIO(content(i)))
    names = ftps.nlst(directory)
    print("listed %d" % len(names))
    for i in range(count):
        received = io.BytesIO()
        ftps.retrbinary("RETR %s/up-%d.bin" % (directory, i), received.write)
        if received.getvalue() != content(i):
            sys.exit("download %d differs" % i)
    print("downloaded %d" % count)
    ftps.quit()


if __name__ == "__main__":
    main()
