"""Who gets through the loopback proxy: the user's tools only; wev says when it cannot serve.

Real daemon, real clients: web pages are stood in for by the headers every browser sends, other
users by throwaway accounts (``useradd`` + ``setpriv``, as root), a socket closed by its owner by
a connection made while the daemon is stopped (SIGSTOP) and closed before it accepts it.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import recipes
import test_proxy
from accounts import as_user, throwaway_user, why_no_throwaway_user
from conftest import Daemon, User, free_port, output
from fakes.codeartifact import FakeCodeArtifact
from fakes.pypi_index import FakePyPIIndex
from test_proxy import assert_no_token, get, write

from wev_daemon.proxy import owners

# The fixtures: the test's proxy port, the index in CodeArtifact's shape.
port, index = test_proxy.port, test_proxy.index

WHY_NO_STRANGER = why_no_throwaway_user()
needs_stranger = pytest.mark.skipif(WHY_NO_STRANGER is not None, reason=str(WHY_NO_STRANGER))
#: What a stranger runs: fetch a URL, print the status and the body's line.
FETCH = (
    "import sys, urllib.request as r, urllib.error as e\n"
    "o = r.build_opener(r.ProxyHandler({}))\n"
    "try: print(o.open(sys.argv[1], timeout=30).status)\n"
    "except e.HTTPError as x: print(x.code, x.read().decode().strip())\n"
)
#: What a stranger runs to hold a port until its stdin closes.
HOLD = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n"
    "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


def as_stranger(stranger: pwd.struct_passwd, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*as_user(stranger), "/usr/bin/python3", "-c", *args],
        env={"PATH": "/usr/bin:/bin"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def held_by(stranger: pwd.struct_passwd, host: str, number: int) -> Iterator[None]:
    holder = subprocess.Popen(
        [*as_user(stranger), "/usr/bin/python3", "-c", HOLD, host, str(number)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(10)


PAGE = "/corp/shared/pypi/simple/corp-lib/"


def raw(port: int, head: str) -> tuple[int, str]:
    """Send a request as written (``head`` without its blank line); its status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(f"{head}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode()


def refusals(daemon: Daemon, what: str) -> int:
    return sum(what in line and "refused" in line for line in daemon.log.splitlines())


# -- browsers ------------------------------------------------------------------------------


def test_a_web_page_cannot_use_the_proxy(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """A page's no-cors POST (an upload) or GET comes with Origin or Sec-Fetch-Site: refused."""
    write(user, recipes.PROXY_PIP, port)
    assert user.wev("true").returncode == 0
    base = recipes.proxy_url("pypi", port)
    before = len(index.attempts)

    posted = get(base, {"Origin": "https://evil.example", "Content-Type": "multipart/form-data"})
    fetched = get(base + "simple/corp-lib/", {"Sec-Fetch-Site": "cross-site"})
    typed = get(base + "simple/corp-lib/", {"Sec-Fetch-Site": "none"})  # the user's own address bar

    assert posted[0] == 403 and posted[1] == (
        "wev: a request from a web page (https://evil.example) is not forwarded\n"
    )
    assert fetched[0] == 403 and fetched[1].count("\n") == 1 and "cross-site" in fetched[1]
    assert typed[0] == 200
    assert len(index.attempts) == before + 1  # only the typed one reached the repository


#: What web pages send, however spelled: a sandboxed iframe or a file: page sends "null".
PAGE_HEADERS = (
    ("Origin", "null"),
    ("origin", "https://evil.example"),
    ("Origin", ""),
    ("Sec-Fetch-Site", "same-origin"),
    ("Sec-Fetch-Site", "same-site"),
    ("sec-fetch-site", "cross-site"),
)


def test_every_sign_of_a_web_page_is_refused(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    write(user, recipes.PROXY_PIP, port)
    assert user.wev("true").returncode == 0
    before = len(index.attempts)

    answers = {
        f"{header}: {value}": raw(
            port, f"GET {PAGE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{header}: {value}"
        )
        for header, value in PAGE_HEADERS
    }

    for sent, (status, body) in answers.items():
        assert status == 403 and body.startswith("wev: a request from a web page ("), sent
        assert body.endswith(") is not forwarded\n") and body.count("\n") == 1, sent
        assert "Sec-Fetch-Site: none" not in body, sent  # the reason named is the one sent
    assert len(index.attempts) == before


def test_the_proxy_answers_every_spelling_of_its_own_host(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """A host name is case-insensitive; a request that names no host is refused in one line."""
    write(user, recipes.PROXY_PIP, port)
    assert user.wev("true").returncode == 0

    spelled = {
        host: raw(port, f"GET {PAGE} HTTP/1.1\r\nHost: {host}")[0]
        for host in (f"127.0.0.1:{port}", f"LOCALHOST:{port}", f"Localhost:{port}", f"[::1]:{port}")
    }
    nameless = raw(port, f"GET {PAGE} HTTP/1.0")
    elsewhere = raw(port, f"GET {PAGE} HTTP/1.1\r\nHost: 127.0.0.1")  # port 80, not ours

    assert set(spelled.values()) == {200}, spelled
    assert nameless == (
        421,
        f"wev: a request without Host is not forwarded (this is 127.0.0.1:{port})\n",
    )
    assert elsewhere[0] == 421 and elsewhere[1].count("\n") == 1


# -- other users -----------------------------------------------------------------------------


@needs_stranger
def test_another_user_is_refused_before_the_request_is_read(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    write(user, recipes.PROXY_PIP, port)
    assert user.wev("true").returncode == 0
    url = recipes.proxy_url("pypi", port) + "simple/corp-lib/"
    before = len(index.attempts)
    # Every way a URL can reach the port: IPv6 loopback, where there is one, is judged too.
    ways = [url, url.replace("127.0.0.1", "localhost")]
    if socket.has_ipv6 and Path("/proc/net/if_inet6").exists():
        ways.append(url.replace("127.0.0.1", "[::1]"))

    with throwaway_user() as stranger:
        tries = [as_stranger(stranger, FETCH, way) for way in ways]

    for refused in tries:
        assert refused.stdout.startswith("403 wev: a connection from uid "), output(refused)
        assert f"uid {stranger.pw_uid}:" in refused.stdout
        assert_no_token(fake, refused.stdout)
    assert len(index.attempts) == before
    assert refusals(daemon, f"uid {stranger.pw_uid}") == 1  # at most once a minute per uid
    assert get(url)[0] == 200  # its own user still gets in


def test_a_connection_closed_by_its_owner_is_not_served(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """Orphaned, a socket has no owner: the kernel once said uid 0 (root) for it."""
    write(user, recipes.PROXY_PIP, port)
    assert user.wev("true").returncode == 0
    before = len(index.attempts)
    request = f"GET /corp/shared/pypi/simple/corp-lib/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"

    daemon.process.send_signal(signal.SIGSTOP)  # it accepts nothing until it runs again
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as orphan:
            orphan.sendall(request.encode())
    finally:
        daemon.process.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 10
    while "does not name" not in daemon.log and time.monotonic() < deadline:
        time.sleep(0.05)

    assert refusals(daemon, "a connection whose owner the kernel does not name") == 1, daemon.log
    assert len(index.attempts) == before


def test_the_kernel_names_live_sockets_only() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        with accepted:
            peer, local = accepted.getpeername(), accepted.getsockname()
            live = owners.connection_uid(peer, local)
            client.close()
            closed = owners.connection_uid(peer, local)
            rows = [row for row in owners._proc_rows(socket.AF_INET) if row.local == peer]
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("no /proc/net/tcp: the kernel does not say who owns a socket here")
    assert live == os.getuid() and closed is None
    # /proc still lists the closed one, with inode 0: the row that must not count (and so
    # any other of that address: an earlier connection from the same port, in TIME_WAIT).
    assert rows and all((row.inode, row.held) == (0, False) for row in rows), rows


# -- the port ----------------------------------------------------------------------------------


def test_the_proxy_holds_ipv6_loopback_too(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    if not socket.has_ipv6 or not Path("/proc/net/if_inet6").exists():
        pytest.skip("no IPv6 loopback here")
    write(user, recipes.PROXY_PIP, port)
    assert user.wev("true").returncode == 0

    page = get(f"http://[::1]:{port}/corp/shared/pypi/simple/corp-lib/")
    named = get(
        f"http://[::1]:{port}/corp/shared/pypi/simple/corp-lib/", {"Host": f"localhost:{port}"}
    )
    with pytest.raises(OSError), socket.socket(socket.AF_INET6) as squatter:
        squatter.bind(("::1", port))  # nobody, this user's other programs included, takes it

    assert page[0] == 200 and f"127.0.0.1:{port}/corp/shared/pypi/" in page[1]
    assert named[0] == 200


@needs_stranger
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_port_held_by_another_user_is_named(
    user: User, port: int, fake: FakeCodeArtifact, index: FakePyPIIndex, host: str
) -> None:
    write(user, recipes.PROXY_PIP, port)
    user.write(
        "work/plain/wev.yml", "TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
    )
    with throwaway_user() as stranger, held_by(stranger, host, port):
        daemon = Daemon(user)
        try:
            proxied = user.wev("true")
            report = user.wev("--status")
            plain = user.wev("true", cwd=user.root / "work" / "plain")
        finally:
            daemon.stop()

    holder = f"uid {stranger.pw_uid} ({stranger.pw_name}) holds it"
    assert proxied.returncode == 69, output(proxied)
    [line] = proxied.stderr.splitlines()
    assert holder in line and str(port) in line
    assert holder in report.stdout
    assert plain.returncode == 0, output(plain)  # the daemon serves everything else


@needs_stranger
def test_status_names_who_holds_the_port_before_the_proxy_is_used(
    user: User, port: int, fake: FakeCodeArtifact
) -> None:
    """After a restart, a pip.conf still names the port: --status says who answers it now."""
    with throwaway_user() as stranger, held_by(stranger, "127.0.0.1", port):
        daemon = Daemon(user)
        try:
            report = user.wev("--status")
        finally:
            daemon.stop()

    assert report.returncode == 0, output(report)
    [line] = [line for line in report.stdout.splitlines() if line.startswith("proxy:")]
    assert f"uid {stranger.pw_uid} ({stranger.pw_name}) holds it" in line and str(port) in line


# -- never the daemon down -------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["99999", "²", "٣٠٠٠١"])  # digits, but not a port's
def test_a_bad_port_leaves_the_daemon_serving(
    user: User, fake: FakeCodeArtifact, index: FakePyPIIndex, bad: str
) -> None:
    write(user, recipes.PROXY_PIP, free_port())
    user.write(
        "work/plain/wev.yml", "TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
    )
    daemon = Daemon(user, env={"WEV_PROXY_PORT": bad})
    try:
        plain = user.wev("true", cwd=user.root / "work" / "plain")
        proxied = user.wev("true")
        report = user.wev("--status")
    finally:
        daemon.stop()

    assert plain.returncode == 0, output(plain)
    assert proxied.returncode == 69
    [line] = proxied.stderr.splitlines()
    assert f"WEV_PROXY_PORT={bad!r} is not a port number" in line
    assert f"WEV_PROXY_PORT={bad!r} is not a port number" in report.stdout


def test_no_secret_is_made_where_the_kernel_names_users(
    user: User, port: int, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """The state folder may be read-only (systemd's ProtectSystem=strict): not needed here."""
    write(user, recipes.PROXY_PIP, port)
    unwritable = user.root / "state-is-a-file"
    unwritable.write_text("")
    daemon = Daemon(user, env={"XDG_STATE_HOME": str(unwritable)})
    try:
        result = user.wev("true")
        page = get(recipes.proxy_url("pypi", port) + "simple/corp-lib/")
    finally:
        daemon.stop()

    assert result.returncode == 0, output(result)
    assert page[0] == 200
    assert not list(user.root.rglob("proxy-secret"))


def test_first_uses_in_parallel_all_succeed(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    write(user, recipes.PROXY_PIP, port)
    calls = [user.popen_wev("true") for _ in range(8)]
    results = [(call.wait(60), call.communicate()[1]) for call in calls]

    assert results == [(0, "")] * 8
    assert get(recipes.proxy_url("pypi", port) + "simple/corp-lib/")[0] == 200
