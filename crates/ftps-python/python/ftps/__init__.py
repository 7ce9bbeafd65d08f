"""A synchronous FTPS (FTP over TLS) client in the spirit of :mod:`ftplib`.

Every data connection resumes the control connection's TLS session, so it works with the
servers that require it (vsftpd with ``require_ssl_reuse=YES``, ProFTPD, ftpsd), where
``ftplib.FTP_TLS`` does not::

    import ftps

    with ftps.connect("ftp.example.com") as client:
        client.login("user", "password")
        client.upload("report.csv", "reports/report.csv")
        client.download("reports/summary.csv", "summary.csv")
        for entry in client.listdir("reports"):
            print(entry.name, entry.size, entry.modified)

Network operations release the GIL; Ctrl-C interrupts them (the session is then closed).
"""

from ._native import (
    Client,
    ConfigError,
    ConnectionError,
    Entry,
    Error,
    LocalError,
    MirrorSummary,
    ProtocolError,
    ReplyError,
    TlsError,
    TransferError,
    __version__,
    connect,
)

# ConnectionError is left out so that `from ftps import *` does not hide the built-in one:
# write ftps.ConnectionError.
__all__ = [
    "Client",
    "ConfigError",
    "Entry",
    "Error",
    "LocalError",
    "MirrorSummary",
    "ProtocolError",
    "ReplyError",
    "TlsError",
    "TransferError",
    "__version__",
    "connect",
]
