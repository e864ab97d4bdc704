"""A ``keyring`` backend that answers CodeArtifact repository URLs with the daemon's token.

Registered under keyring's ``keyring.backends`` entry point (wev with its
``keyring`` extra in the tool's environment: README "Installing"), so pip
(``--keyring-provider import`` or ``subprocess``), uv (``--keyring-provider
subprocess``), twine and Poetry get ``aws`` and a
fresh token for a plain index URL, with no ``wev`` in front of the command.
Which URLs are ours, and with which settings: see ``wev_client.codeartifact``.
Any other service gets None, so the next backend of keyring's chain answers.

keyring imports every installed backend whenever a tool first uses it: this
module imports only keyring's own modules at the top; the lookup's are
imported when a lookup happens. Nothing is stored: tokens stay in the daemon.
"""

from __future__ import annotations

import os
import sys

from keyring.backend import KeyringBackend
from keyring.credentials import Credential, SimpleCredential


class WevKeyring(KeyringBackend):
    """CodeArtifact tokens from wev; None for anything else."""

    #: Above the system keyrings (5), below keyring's chainer (10), which then asks
    #: this backend first and the system keyring for every other service.
    priority = 9

    def get_password(self, service: str, username: str | None) -> str | None:
        if username not in (None, "", _username()):
            return None
        return _token(service)

    def get_credential(self, service: str, username: str | None) -> Credential | None:
        password = self.get_password(service, username)
        return None if password is None else SimpleCredential(_username(), password)

    def set_password(self, service: str, username: str, password: str) -> None:
        # keyring's chainer then stores it in the next backend.
        raise NotImplementedError("wev keeps no passwords: it asks AWS for tokens")

    def delete_password(self, service: str, username: str) -> None:
        raise NotImplementedError("wev keeps no passwords: it asks AWS for tokens")


def _username() -> str:
    from wev_client.protocol.aws import CODEARTIFACT_USERNAME

    return CODEARTIFACT_USERNAME


def _token(service: str) -> str | None:
    """The token for ``service``, or None; a failure is one line on stderr, then None."""
    from wev_client import codeartifact
    from wev_client.output import printable
    from wev_client.protocol.errors import WevError

    def warn(message: str) -> None:
        print(f"wev: warning: {printable(message)}", file=sys.stderr)

    try:
        return codeartifact.token_for_url(service, os.environ, warn)
    except WevError as error:
        # The tool goes on without credentials and reports the refusal; this says why.
        print(f"wev: keyring: {printable(service)}: {printable(error)}", file=sys.stderr)
        return None
