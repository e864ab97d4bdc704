"""``wev-token``: a CodeArtifact token for tools that run a helper program (pnpm's ``tokenHelper``).

pnpm runs ``tokenHelper`` (an absolute path, no arguments) in the project's
folder and sends what it prints as the ``Authorization`` header, so
``wev-token`` prints ``Bearer TOKEN``: the token of the nearest wev.yml's
CodeArtifact entry for npm (``format: npm``), else of its first CodeArtifact
entry. ``wev-token NAME`` picks the entry that sets NAME; ``--raw`` prints the
token alone. Errors are one line on stderr and exit status 69 or 78, as ``wev``'s.
"""

from __future__ import annotations

import os
import sys

from wev_client.protocol.errors import UsageError, WevError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

USAGE = "usage: wev-token [--raw] [NAME]"


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    from wev_client.output import printable

    def warn(message: str) -> None:
        print(f"wev-token: warning: {printable(message)}", file=sys.stderr)

    try:
        raw = "--raw" in argv
        words = [arg for arg in argv if arg != "--raw"]
        if words[:1] in (["-h"], ["--help"]):
            print(USAGE)
            return 0
        if len(words) > 1 or any(word.startswith("-") for word in words):
            raise UsageError(f"unexpected arguments: {' '.join(words)}", hint=USAGE)
        from wev_client import codeartifact

        token = codeartifact.token_of_entry(words[0] if words else None, environ, warn)
    except WevError as error:
        print(f"wev-token: {printable(error)}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        return 130
    try:
        sys.stdout.write(token + "\n" if raw else f"Bearer {token}\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the reader has gone
        from wev_client.execute import reader_gone

        return reader_gone()
    return 0
