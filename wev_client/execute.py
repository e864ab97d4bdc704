"""Replacing the client process with the user's command, exactly as ``env`` would.

``exec``, not a child process: the command gets wev's pid, its signals and its
exit status are its own, and no Python stays around. Like a shell, a missing
command is 127 and one that cannot be run is 126. The PATH search is done here
(``os.execvpe`` imports ``warnings`` on every call, a cost on the hot path),
and like ``execvp`` a file the kernel cannot run (ENOEXEC: a script without
``#!``) is run with ``/bin/sh``.

Python changes some signal dispositions at start-up, and dispositions set to
"ignore" survive ``exec``: ``restore_signals`` undoes them first, so that
``wev yes | head -1`` ends ``yes`` by SIGPIPE as ``env yes | head -1`` does.
The signal mask is never changed by wev: the command inherits the caller's.
Where wev itself is stopped (Ctrl-C, a reader gone), it ends by that signal too.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the same functions, with stubs
    from collections.abc import Mapping, Sequence
else:
    import _signal  # built in and already loaded: free, unlike signal (enum, ~3 ms)

COMMAND_NOT_FOUND = 127
COMMAND_NOT_EXECUTABLE = 126
#: What execvp runs a file with when the kernel does not recognise its format.
SHELL = "/bin/sh"


def restore_signals() -> None:
    """Give back the dispositions Python changed at start-up.

    Python ignores SIGPIPE and SIGXFSZ (to see EPIPE and EFBIG as exceptions)
    and handles SIGINT (to raise KeyboardInterrupt). A SIGINT that the caller
    already ignored (a background job of a script) stays ignored, as Python
    left it: Python installs its handler only over the default.
    """
    for name in ("SIGPIPE", "SIGXFSZ"):
        number = getattr(_signal, name, None)
        if number is not None:
            _signal.signal(number, _signal.SIG_DFL)
    if _signal.getsignal(_signal.SIGINT) is not _signal.SIG_IGN:
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)


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
    restore_signals()
    denied: OSError | None = None
    for path in candidates:
        try:
            os.execve(path, args, environ)  # noqa: S606 - exec is the point
        except (FileNotFoundError, NotADirectoryError):  # ENOENT, ENOTDIR: not here
            continue
        except OSError as error:
            import errno  # a file that would not run: not the hot path

            if error.errno == errno.ENOEXEC:
                # As execvp: a file with no "#!" that the kernel will not run is a shell script.
                try:  # noqa: SIM105 - contextlib is not on the hot path
                    os.execve(SHELL, [SHELL, path, *args[1:]], environ)  # noqa: S606
                except OSError:
                    pass  # no shell to run it with: report the file's own error
            denied = denied or error  # keep looking, as shells do, but remember why
    if denied is None:
        print(f"wev: {name}: command not found", file=sys.stderr)
        return COMMAND_NOT_FOUND
    import errno

    reason = "permission denied" if denied.errno == errno.EACCES else denied.strerror
    print(f"wev: {name}: {reason}", file=sys.stderr)
    return COMMAND_NOT_EXECUTABLE


def interrupted() -> int:
    """End wev by SIGINT, as a shell expects of a command stopped by Ctrl-C.

    A shell loop (``while true; do wev ...; done``) stops only when its command
    died of SIGINT: exit status 130 reads as a command that chose to exit.
    The status is returned only if the signal could not end the process (the
    caller blocked it).
    """
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib is not on the hot path
            stream.flush()
        except (OSError, ValueError):
            pass
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    os.kill(os.getpid(), _signal.SIGINT)
    return 128 + _signal.SIGINT


def reader_gone() -> int:
    """End by SIGPIPE, silently, as ``cat`` or ``env`` end when their reader has gone."""
    with open(os.devnull, "w") as devnull:  # nothing more reaches the closed pipe at exit
        os.dup2(devnull.fileno(), sys.stdout.fileno())
    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    os.kill(os.getpid(), _signal.SIGPIPE)
    return 128 + _signal.SIGPIPE
