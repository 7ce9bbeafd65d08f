"""What the test scripts share: the server from the environment (tests/python.rs)."""

import os

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
TRUST = (
    {"ca_file": os.environ["FTPS_CA_FILE"]}
    if "FTPS_CA_FILE" in os.environ
    else {"pin_sha256": os.environ["FTPS_PIN"]}
)


def connect(**options) -> ftps.Client:
    """A logged-in client in the test directory."""
    settings = dict(TRUST, timeout=30)
    settings.update(options)
    port = settings.pop("port", PORT)
    client = ftps.connect(HOST, port, **settings)
    client.login(USER, PASSWORD)
    client.cwd(BASE)
    return client


def expect(exception, call, *args, **kwargs):
    """Calls `call` and returns the exception it raises, which must be an `exception`."""
    try:
        call(*args, **kwargs)
    except exception as e:
        return e
    raise AssertionError(f"{getattr(call, '__name__', call)}{args} did not raise {exception.__name__}")


def step(text: str) -> None:
    print(f"[{SERVER}] {text}", flush=True)
