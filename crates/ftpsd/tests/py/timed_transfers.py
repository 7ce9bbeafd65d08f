"""Timed transfers with ftplib for the bandwidth tests: one session per transfer, all
sessions logged in (AUTH TLS, PROT P, data connections resuming the control session's TLS
session) before any transfer starts, then every transfer at once.

Usage: timed_transfers.py SPEC...
  SPEC  "download,USER,PASSWORD,NAME,LOCAL_PATH" or "upload,USER,PASSWORD,NAME,LOCAL_PATH"
Connection settings come from FTP_HOST, FTP_PORT and FTP_CAFILE.

Each transfer is timed by the client from its command (RETR/STOR) to the 226 reply. Prints
one line per transfer, "transfer bytes=N seconds=S", and then "total bytes=N seconds=S",
where seconds is from the first transfer's start to the last one's end.
"""

import os
import ssl
import sys
import threading
import time

from reusing_ftp_tls import ReusingFTP_TLS


def connect(user, password):
    context = ssl.create_default_context(cafile=os.environ["FTP_CAFILE"])
    ftps = ReusingFTP_TLS(context=context, timeout=120)
    ftps.connect(os.environ["FTP_HOST"], int(os.environ["FTP_PORT"]))
    ftps.login(user=user, passwd=password)
    ftps.prot_p()
    return ftps


def main():
    specs = [arg.split(",", 4) for arg in sys.argv[1:]]
    sessions = [connect(user, password) for _, user, password, _, _ in specs]
    ready = threading.Barrier(len(specs))
    results = [None] * len(specs)
    errors = []

    def run(i):
        kind, _, _, name, local = specs[i]
        ftps = sessions[i]
        try:
            ready.wait()
            if kind == "download":
                with open(local, "wb") as file:
                    start = time.monotonic()
                    ftps.retrbinary(f"RETR {name}", file.write, blocksize=256 * 1024)
                    end = time.monotonic()
            else:
                with open(local, "rb") as file:
                    start = time.monotonic()
                    ftps.storbinary(f"STOR {name}", file, blocksize=256 * 1024)
                    end = time.monotonic()
            results[i] = (os.path.getsize(local), start, end)
        except Exception as e:  # reported below, with the others
            errors.append(f"{kind} {name}: {e!r}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(specs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("\n".join(errors))
    for size, start, end in results:
        print(f"transfer bytes={size} seconds={end - start:.6f}")
    total = sum(size for size, _, _ in results)
    span = max(end for _, _, end in results) - min(start for _, start, _ in results)
    print(f"total bytes={total} seconds={span:.6f}")
    for ftps in sessions:
        ftps.quit()


if __name__ == "__main__":
    main()
