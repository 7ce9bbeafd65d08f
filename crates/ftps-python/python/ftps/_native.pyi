"""Type stubs of the extension module (src/*.rs); the package re-exports all of it."""

import datetime
import os
from types import TracebackType
from typing import List, Literal, Optional, Tuple, Type, Union

_Path = Union[str, "os.PathLike[str]"]

__version__: str

class Error(Exception):
    """Base class of every error this package raises."""

    kind: str
    """connect, tls, login, remote_file, transfer, local_io, config, protocol or other."""

class ReplyError(Error):
    """The server refused a command."""

    code: int
    """The reply code: 530 login refused, 550 no such file or no permission, ..."""
    text: str
    """The server's reply text."""
    command: str
    """The command it answered (a password never appears)."""

class TlsError(Error):
    """TLS failed, on the control connection."""

    fingerprint: Optional[str]
    """SHA-256 fingerprint of a refused server certificate, else None."""

class ConnectionError(Error):
    """Not reachable, closed by the server, or no answer in time."""

class TransferError(Error):
    """A data connection or transfer failed; or a mirror could not do everything."""

    summary: "MirrorSummary"
    """Only when raised by :meth:`Client.mirror`: what was done."""

class ProtocolError(Error):
    """The server sent something that is not FTP."""

class LocalError(Error):
    """Reading or writing a local file failed."""

class ConfigError(Error):
    """Unusable settings: CA file, client certificate or key, host name."""

class Entry:
    """One entry of a directory listing."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> Literal["file", "dir", "link", "other"]: ...
    @property
    def size(self) -> Optional[int]: ...
    @property
    def modified(self) -> Optional[datetime.datetime]:
        """Aware, in UTC."""
    @property
    def mode(self) -> Optional[int]: ...
    @property
    def link_target(self) -> Optional[str]: ...
    @property
    def is_dir(self) -> bool: ...
    @property
    def is_file(self) -> bool: ...

class MirrorSummary:
    """What :meth:`Client.mirror` did."""

    @property
    def transferred(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def unchanged(self) -> int: ...
    @property
    def deleted(self) -> int: ...
    @property
    def created_dirs(self) -> int: ...
    @property
    def failed(self) -> List[Tuple[str, str]]:
        """(relative path, message) of each file that could not be copied or deleted."""
    @property
    def ok(self) -> bool: ...

class Client:
    """An FTPS session; made by :func:`connect`."""

    def login(self, user: str = "anonymous", password: str = "") -> None: ...
    def upload(self, local_path: _Path, remote_path: str, *, resume: bool = False) -> int:
        """Uploads a local file; returns the bytes sent."""
    def download(self, remote_path: str, local_path: _Path, *, resume: bool = False) -> int:
        """Downloads to a local file; returns the bytes received."""
    def listdir(self, path: str = ".") -> List[Entry]: ...
    def nlst(self, path: str = ".") -> List[str]: ...
    def mirror(
        self,
        source: _Path,
        dest: _Path,
        *,
        direction: Literal["download", "upload"] = "download",
        parallel: int = 4,
        delete: bool = False,
    ) -> MirrorSummary:
        """download: remote source to local dest; upload: local source to remote dest."""
    def mkdir(self, path: str, *, parents: bool = False) -> None: ...
    def rmdir(self, path: str) -> None: ...
    def delete(self, path: str) -> None: ...
    def rename(self, source: str, dest: str) -> None: ...
    def size(self, path: str) -> int: ...
    def pwd(self) -> str: ...
    def cwd(self, path: str) -> None: ...
    @property
    def data_connections(self) -> Tuple[int, int]:
        """(opened, resumed the control connection's TLS session)."""
    @property
    def tls_version(self) -> Optional[str]: ...
    @property
    def connected(self) -> bool: ...
    def quit(self) -> None: ...
    def __enter__(self) -> "Client": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

def connect(
    host: str,
    port: Optional[int] = None,
    *,
    implicit: bool = False,
    ca_file: Optional[_Path] = None,
    pin_sha256: Optional[str] = None,
    insecure: bool = False,
    timeout: float = 60.0,
    tls12_only: bool = False,
    client_cert: Optional[_Path] = None,
    client_key: Optional[_Path] = None,
    active: bool = False,
) -> Client:
    """Connects and secures the control connection; log in next with :meth:`Client.login`."""
