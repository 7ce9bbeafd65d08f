"""A server that requires a client certificate: connecting with one works, without one fails."""

import os

import ftps
from common import HOST, PORT, CA_FILE, PIN, connect, expect, step

cert, key = os.environ["FTPS_CLIENT_CERT"], os.environ["FTPS_CLIENT_KEY"]

step("with the client certificate: log in, transfer, list")
with connect(client_cert=cert, client_key=key) as client:
    with open("hello.txt", "wb") as f:
        f.write(b"hello over mutual TLS\n")
    assert client.upload("hello.txt", "hello.txt") == 22
    assert client.download("hello.txt", "back.txt") == 22
    assert open("back.txt", "rb").read() == b"hello over mutual TLS\n"
    assert "hello.txt" in [e.name for e in client.listdir()]
    opened, resumed = client.data_connections
    assert opened == resumed == 3, client.data_connections

step("without it: refused")
e = expect(ftps.Error, connect)
assert isinstance(e, (ftps.TlsError, ftps.ConnectionError)), repr(e)

step("a client key file that is not a key: ConfigError")
expect(ftps.ConfigError, ftps.connect, HOST, PORT, ca_file=CA_FILE, pin_sha256=PIN, client_cert=cert, client_key=cert)
print("client certificate ok")
