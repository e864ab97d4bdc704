"""Replacing the client process with the user's command.

``exec``, not a child process: the command gets wev's pid, its signals and its
exit status are its own, and no Python stays around. Like a shell, a missing
command is 127 and one that cannot be run is 126.
"""

from __future__ import annotations

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
    try:
        os.execvpe(command[0], list(command), dict(env))  # noqa: S606 - exec is the point
    except FileNotFoundError:
        print(f"wev: {command[0]}: command not found", file=sys.stderr)
        return COMMAND_NOT_FOUND
    except PermissionError:
        print(f"wev: {command[0]}: permission denied", file=sys.stderr)
        return COMMAND_NOT_EXECUTABLE
    except OSError as error:
        print(f"wev: {command[0]}: cannot run: {error.strerror}", file=sys.stderr)
        return COMMAND_NOT_EXECUTABLE
    raise AssertionError("unreachable: execvpe returned")
