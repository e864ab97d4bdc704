"""Certificates for fakes that serve HTTPS, from a throwaway CA made for each use (``trustme``).

``issue(folder, *hosts)`` writes the CA's certificate to ``folder/ca.pem``: what a client is
told to trust (``SSL_CERT_FILE`` for Go and OpenSSL, ``AWS_CA_BUNDLE``, ``REQUESTS_CA_BUNDLE``).
Its ``server`` context holds a certificate for ``hosts`` (names or IP addresses) signed by that
CA, for ``ThreadedAppServer(tls=...)`` or ``StreamWriter.start_tls``. Nothing else trusts it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Tls:
    """The CA a client trusts (a PEM file) and the server's side of the handshake."""

    ca_file: Path
    server: ssl.SSLContext


def issue(folder: Path, *hosts: str) -> Tls:
    """A new CA in ``folder`` (``ca.pem``) and a server certificate it signs for ``hosts``."""
    ca = trustme.CA()
    folder.mkdir(parents=True, exist_ok=True)
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*hosts).configure_cert(server)
    return Tls(ca_file, server)
