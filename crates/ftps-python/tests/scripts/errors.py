"""Errors: each failure raises its class of the ftps.Error hierarchy, with what a caller
needs (the reply code, the refused certificate's fingerprint)."""

import os
import signal
import socket
import threading
from typing import List

import ftps
from common import BASE, HOST, PASSWORD, PORT, SERVER_PIN, CA_FILE, PIN, USER, connect, expect, step

step("wrong password: ReplyError 530")
with ftps.connect(HOST, PORT, ca_file=CA_FILE, pin_sha256=PIN, timeout=30) as client:
    e = expect(ftps.ReplyError, client.login, USER, "wrong-" + PASSWORD)
    assert e.code == 530, (e.code, str(e))
    assert e.kind == "login", e.kind
    assert isinstance(e, ftps.Error)
    assert e.command.startswith("PASS"), e.command
    assert PASSWORD not in str(e) and PASSWORD not in e.command, str(e)

step("a certificate that is not the pinned one: TlsError with its fingerprint")
tls = expect(ftps.TlsError, ftps.connect, HOST, PORT, pin_sha256="00" * 32, timeout=30)
assert tls.kind == "tls", tls.kind
assert tls.fingerprint is not None
assert tls.fingerprint.replace(":", "").lower() == SERVER_PIN, (tls.fingerprint, SERVER_PIN)
assert "pin_sha256" in str(tls), str(tls)

step("a certificate the system's roots do not vouch for: TlsError")
untrusted = expect(ftps.TlsError, ftps.connect, HOST, PORT, timeout=30)
assert untrusted.fingerprint is not None
assert untrusted.fingerprint.replace(":", "").lower() == SERVER_PIN, untrusted.fingerprint

step("nobody listening: ConnectionError")
closed = int(os.environ["FTPS_CLOSED_PORT"])
unreachable = expect(ftps.ConnectionError, ftps.connect, HOST, closed, insecure=True, timeout=10)
assert unreachable.kind == "connect" and isinstance(unreachable, ftps.Error), unreachable.kind

step("settings: ConfigError for an unreadable CA file, ValueError for bad arguments")
config = expect(ftps.ConfigError, ftps.connect, HOST, PORT, ca_file="/nonexistent/ca.pem")
assert "/nonexistent/ca.pem" in str(config), str(config)
expect(ValueError, ftps.connect, HOST, PORT, pin_sha256="not-a-fingerprint")
expect(ValueError, ftps.connect, HOST, PORT, pin_sha256=SERVER_PIN, insecure=True)
expect(ValueError, ftps.connect, HOST, PORT, client_cert="cert.pem")
expect(ValueError, ftps.connect, HOST, PORT, timeout=0)
expect(ValueError, ftps.connect, "", PORT)
expect(OverflowError, ftps.connect, HOST, 70000)

with connect() as client:
    step("a missing remote file: ReplyError 550, and no empty local file left behind")
    e = expect(ftps.ReplyError, client.download, "no-such-file.bin", "local.bin")
    assert e.code == 550, (e.code, str(e))
    assert e.kind == "remote_file", e.kind
    assert not os.path.exists("local.bin")
    e = expect(ftps.ReplyError, client.size, "no-such-file.bin")
    assert e.code in (550, 450), e.code
    e = expect(ftps.ReplyError, client.cwd, "no-such-dir")
    assert e.code == 550, e.code
    e = expect(ftps.ReplyError, client.delete, "no-such-file.bin")
    assert e.code == 550, e.code

    step("a missing local file: LocalError")
    local = expect(ftps.LocalError, client.upload, "no-such-local-file.bin", "x.bin")
    assert local.kind == "local_io", local.kind

    step("bad mirror arguments: ValueError")
    expect(ValueError, client.mirror, "a", "b", direction="sideways")
    expect(ValueError, client.mirror, "a", "b", parallel=0)

    step("the session still works after all that")
    assert client.listdir() is not None
    client.quit()
    step("a closed client: Error, and quit() again does nothing")
    after_quit = expect(ftps.Error, client.pwd)
    assert "quit" in str(after_quit), str(after_quit)
    client.quit()
    assert not client.connected

step("a with-block that raises: the exception propagates and the session is closed")


class Boom(Exception):
    pass


try:
    with connect() as client:
        raise Boom()
except Boom:
    pass
else:
    raise AssertionError("the exception was swallowed")
assert not client.connected
step("the GIL is released while a call waits, and Ctrl-C interrupts the wait")
# A server that accepts and never greets. The helper thread can only return from accept()
# while connect() waits for the greeting if connect() released the GIL; it then interrupts
# the main thread, which must raise KeyboardInterrupt instead of waiting for the timeout.
silent = socket.create_server(("127.0.0.1", 0))
accepted: List[socket.socket] = []


def interrupt_once_connected() -> None:
    conn, _ = silent.accept()
    accepted.append(conn)
    os.kill(os.getpid(), signal.SIGINT)


helper = threading.Thread(target=interrupt_once_connected, daemon=True)
helper.start()
try:
    ftps.connect("127.0.0.1", silent.getsockname()[1], insecure=True, timeout=120)
except KeyboardInterrupt:
    pass
else:
    raise AssertionError("connect() to a silent server returned")
helper.join()
assert accepted, "the helper thread never ran"
print("errors ok")
