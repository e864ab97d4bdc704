"""The caller's context that a request carries: the AWS context values depend on.

The client sends every ``AWS_*`` variable, its proxies, its CA bundle and
HOME, with paths made absolute (the daemon has another working folder); this is the part of
its environment a resolution may depend on (``Plugin.context_vars`` picks
from it).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


#: Besides every ``AWS_*`` variable and HOME, what the client sends as its
#: context: the proxies its AWS calls go through and the CA bundle they trust
#: (botocore reads ``REQUESTS_CA_BUNDLE`` after ``AWS_CA_BUNDLE``). The daemon
#: never uses its own.
PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy")
NETWORK_VARS = (*PROXY_VARS, "REQUESTS_CA_BUNDLE")
#: Context variables that name a file or folder: the client sends them absolute
#: (``~`` expanded with its HOME, relative ones against its working folder),
#: since the daemon has another working folder.
PATH_VARS = frozenset(
    {
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_LOGIN_CACHE_DIRECTORY",
    }
)


def is_context_var(name: str) -> bool:
    """Whether a resolution may depend on this variable: the caller's AWS context."""
    return name.startswith("AWS_") or name == "HOME" or name in NETWORK_VARS


def context_env(environ: Mapping[str, str], cwd: str | None = None) -> dict[str, str]:
    """The caller's AWS context: every AWS_* variable, its proxies, CA bundle and HOME.

    Paths in it are made absolute for the daemon, whose folders are not the
    caller's: ``~`` with the caller's HOME, relative ones against ``cwd``.
    """
    home = environ.get("HOME")
    context = {}
    for name, value in environ.items():
        if not is_context_var(name):
            continue
        if name in PATH_VARS and value:
            value = absolute_path(value, home, cwd)
        context[name] = value
    return context


def absolute_path(path: str, home: str | None, cwd: str | None) -> str:
    """``path`` as the caller means it, independent of any working folder."""
    import posixpath  # already loaded by os: free

    if path == "~" or path.startswith("~/"):
        if home:
            path = home + path[1:]
    elif path.startswith("~"):
        path = posixpath.expanduser(path)  # ~user
    if not path.startswith("/") and cwd:
        path = posixpath.join(cwd, path)
    return posixpath.normpath(path) if path.startswith("/") else path
