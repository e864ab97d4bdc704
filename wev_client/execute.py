"""Replacing the client process with the user's command.

``exec``, not a child process: the command gets wev's pid, its signals and its
exit status are its own, and no Python stays around. Like a shell, a missing
command is 127 and one that cannot be run is 126. The PATH search is done here
(``os.execvpe`` imports ``warnings`` on every call, a cost on the hot path).
"""

from __future__ import annotations

import errno
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

COMMAND_NOT_FOUND = 127
COMMAND_NOT_EXECUTABLE = 126


def exec_command(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Exec ``command`` with ``env``; return an exit status only if it cannot run."""
    sys.stdout.flush()
    sys.stderr.flush()
    name, args, environ = command[0], list(command), dict(env)
    if "/" in name:
        candidates = [name]
    else:
        folders = environ.get("PATH", os.defpath).split(os.pathsep)
        candidates = [os.path.join(folder or ".", name) for folder in folders]
    denied: OSError | None = None
    for path in candidates:
        try:
            os.execve(path, args, environ)  # noqa: S606 - exec is the point
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ENOTDIR):
                continue
            denied = denied or error  # keep looking, as shells do, but remember why
    if denied is None:
        print(f"wev: {name}: command not found", file=sys.stderr)
        return COMMAND_NOT_FOUND
    reason = "permission denied" if denied.errno == errno.EACCES else denied.strerror
    print(f"wev: {name}: {reason}", file=sys.stderr)
    return COMMAND_NOT_EXECUTABLE
