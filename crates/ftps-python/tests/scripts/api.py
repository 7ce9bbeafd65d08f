"""Every method of ftps.Client against one server: directories, renames, sizes, listings,
resume both ways, mirror both ways, implicit TLS, TLS 1.2 only, active mode, threads."""

import datetime
import hashlib
import os
import posixpath
import threading
from typing import List

import ftps
from common import BASE, IMPLICIT_PORT, SERVER, connect, expect, step


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


big = os.urandom(2 * 1024 * 1024 + 123)
write("big.bin", big)

with connect() as client:
    assert client.connected
    assert client.tls_version in ("TLSv1_3", "TLSv1_2"), client.tls_version
    assert client.pwd().rstrip("/") == BASE.rstrip("/"), (client.pwd(), BASE)
    assert "ftps.Client" in repr(client)

    step("directories: mkdir (with parents), cwd, pwd, rmdir")
    client.mkdir("dir one")
    client.mkdir("a/b/c", parents=True)
    client.mkdir("a/b/c", parents=True)  # already there: fine
    e = expect(ftps.ReplyError, client.mkdir, "dir one")
    assert e.code == 550, e.code
    client.cwd("a/b")
    assert client.pwd().rstrip("/").endswith("/a/b"), client.pwd()
    client.cwd(BASE)

    step("upload, size, listdir, rename, download")
    assert client.upload("big.bin", "dir one/big.bin") == len(big)
    assert client.size("dir one/big.bin") == len(big)
    entries = client.listdir("dir one")
    assert [e.name for e in entries] == ["big.bin"], entries
    entry = entries[0]
    assert entry.kind == "file" and entry.is_file and not entry.is_dir, entry
    assert entry.size == len(big), entry
    assert entry.modified is not None and entry.modified.tzinfo is not None, entry
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - entry.modified).total_seconds()) < 24 * 3600, (entry.modified, now)
    assert "big.bin" in repr(entry)
    kinds = {e.name: e.kind for e in client.listdir()}
    assert kinds.get("a") == "dir" and kinds.get("dir one") == "dir", kinds
    assert kinds == {e.name: e.kind for e in client.listdir(".")}
    assert sorted(client.nlst("dir one")) in (["big.bin"], ["dir one/big.bin"]), client.nlst("dir one")
    client.rename("dir one/big.bin", "dir one/renamed.bin")
    assert client.download("dir one/renamed.bin", "copy.bin") == len(big)
    assert sha256("copy.bin") == hashlib.sha256(big).hexdigest()

    step("resume a download and an upload")
    write("partial.bin", big[:100_000])
    assert client.download("dir one/renamed.bin", "partial.bin", resume=True) == len(big) - 100_000
    assert sha256("partial.bin") == hashlib.sha256(big).hexdigest()
    write("half.bin", big[: len(big) // 2])
    client.upload("half.bin", "dir one/half.bin")
    assert client.upload("big.bin", "dir one/half.bin", resume=True) == len(big) - len(big) // 2
    assert client.size("dir one/half.bin") == len(big)
    client.download("dir one/half.bin", "half-back.bin")
    assert sha256("half-back.bin") == hashlib.sha256(big).hexdigest()
    # Without resume, a download replaces the local file.
    write("replaced.bin", b"x" * 5_000_000)
    client.download("dir one/half.bin", "replaced.bin")
    assert sha256("replaced.bin") == hashlib.sha256(big).hexdigest()

    step("delete, rmdir")
    client.delete("dir one/renamed.bin")
    client.delete("dir one/half.bin")
    client.rmdir("dir one")
    assert "dir one" not in [e.name for e in client.listdir()]

    step("mirror up, again (nothing to do), down, and up with delete")
    write("src/x.txt", b"x" * 10)
    write("src/sub/y.bin", os.urandom(300_000))
    write("src/sub/deeper/z.txt", b"")
    summary = client.mirror("src", "mirrored", direction="upload", parallel=3)
    assert summary.ok and summary.transferred == 3 and summary.bytes == 300_010, summary
    assert summary.created_dirs >= 2, summary
    again = client.mirror("src", "mirrored", direction="upload")
    assert again.transferred == 0 and again.unchanged == 3, again
    down = client.mirror("mirrored", "back", parallel=2)
    assert down.transferred == 3, down
    for rel in ["x.txt", "sub/y.bin", "sub/deeper/z.txt"]:
        assert sha256(os.path.join("back", rel)) == sha256(os.path.join("src", rel)), rel
    os.remove("src/x.txt")
    pruned = client.mirror("src", posixpath.join(BASE, "mirrored"), direction="upload", delete=True)
    assert pruned.deleted == 1, pruned
    assert "x.txt" not in [e.name for e in client.listdir("mirrored")]
    assert "MirrorSummary" in repr(pruned)

    opened, resumed = client.data_connections
    assert opened > 0 and opened == resumed, client.data_connections

step("one client shared by threads: calls take turns")
with connect() as shared:
    errors: List[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                assert shared.size("big-shared.bin") == len(big)
                assert "big-shared.bin" in [e.name for e in shared.listdir()]
        except BaseException as e:  # reported below
            errors.append(e)

    shared.upload("big.bin", "big-shared.bin")
    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    shared.delete("big-shared.bin")

step("TLS 1.2 only: data connections resume the TLS 1.2 session")
with connect(tls12_only=True) as client:
    assert client.tls_version == "TLSv1_2", client.tls_version
    client.upload("big.bin", "tls12.bin")
    client.download("tls12.bin", "tls12-back.bin")
    assert sha256("tls12-back.bin") == hashlib.sha256(big).hexdigest()
    opened, resumed = client.data_connections
    assert opened == resumed == 2, client.data_connections
    client.delete("tls12.bin")

step("active mode")
with connect(active=True) as client:
    assert "a" in [e.name for e in client.listdir()]

if IMPLICIT_PORT:
    step("implicit TLS")
    with connect(port=IMPLICIT_PORT, implicit=True) as client:
        assert "a" in [e.name for e in client.listdir()]
        client.download(posixpath.join("mirrored", "sub", "y.bin"), "implicit.bin")
        assert sha256("implicit.bin") == sha256("src/sub/y.bin")

print(f"api ok against {SERVER}")
