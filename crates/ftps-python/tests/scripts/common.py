"""What the test scripts share: the server from the environment (tests/python.rs)."""

import os
from typing import Any, Callable, Type, TypeVar

import ftps

HOST = os.environ["FTPS_HOST"]
PORT = int(os.environ["FTPS_PORT"])
IMPLICIT_PORT = int(os.environ["FTPS_IMPLICIT_PORT"]) if os.environ.get("FTPS_IMPLICIT_PORT") else None
USER = os.environ["FTPS_USER"]
PASSWORD = os.environ["FTPS_PASSWORD"]
BASE = os.environ["FTPS_BASE"]
SERVER = os.environ["FTPS_SERVER"]
#: The server certificate's SHA-256 fingerprint, lower-case hex without separators.
SERVER_PIN = os.environ["FTPS_PIN_OF_SERVER"]
#: How the scripts trust the server: its CA file (and name), or its pinned fingerprint.
CA_FILE = os.environ.get("FTPS_CA_FILE")
PIN = None if CA_FILE else os.environ["FTPS_PIN"]

E = TypeVar("E", bound=BaseException)


def connect(port: int = PORT, **options: Any) -> ftps.Client:
    """A logged-in client in the test directory."""
    options.setdefault("timeout", 30)
    client = ftps.connect(HOST, port, ca_file=CA_FILE, pin_sha256=PIN, **options)
    client.login(USER, PASSWORD)
    client.cwd(BASE)
    return client


def expect(exception: Type[E], call: Callable[..., object], *args: Any, **kwargs: Any) -> E:
    """Calls `call` and returns the exception it raises, which must be an `exception`."""
    try:
        call(*args, **kwargs)
    except exception as e:
        return e
    raise AssertionError(f"{getattr(call, '__name__', call)}{args} did not raise {exception.__name__}")


def step(text: str) -> None:
    print(f"[{SERVER}] {text}", flush=True)
