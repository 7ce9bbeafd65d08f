"""The classic ftplib.FTP_TLS example (upload a file, download a file, list the directory),
written with the ftps package.

ftplib.FTP_TLS cannot do this against servers that require the data connections to resume
the control connection's TLS session (vsftpd with require_ssl_reuse=YES, ProFTPD, ftpsd);
ftps resumes it on every data connection. The server comes from the environment
(tests/python.rs); README.md shows the same example with literal settings.
"""

import os

import ftps

# FTPS server configuration
ftps_server = os.environ["FTPS_HOST"]
ftps_port = int(os.environ["FTPS_PORT"])
ftps_user = os.environ["FTPS_USER"]
ftps_password = os.environ["FTPS_PASSWORD"]
# Trust: the server's CA (and name), or its certificate's pinned SHA-256 fingerprint.
ca_file = os.environ.get("FTPS_CA_FILE")
pin_sha256 = None if ca_file else os.environ["FTPS_PIN"]

# Connect to the server (TLS before the password is sent) and log in; data connections are
# always protected.
with ftps.connect(ftps_server, ftps_port, ca_file=ca_file, pin_sha256=pin_sha256) as client:
    client.login(ftps_user, ftps_password)
    client.cwd(os.environ["FTPS_BASE"])

    # Upload a file
    filename = "upload.txt"
    client.upload(filename, filename)

    # Download a file
    filename = "download.txt"
    client.download(filename, filename)

    # List files in the current directory
    for entry in client.listdir():
        modified = entry.modified.isoformat() if entry.modified else "-"
        print(entry.kind, entry.size, modified, entry.name)

    opened, resumed = client.data_connections
    print(f"data connections: {opened}, resumed: {resumed}")
# Leaving the block logs out and closes the connection.
