"""The loopback proxy against its repository: every spelling of its URLs, failures, limits, network.

Real tools (npm, pnpm, pip) against the fakes in the shape of the real CodeArtifact, which writes
its URLs with the scheme's port spelled out; a repository that misbehaves on purpose
(``fakes.repository``); the caller's HTTP proxy and CA bundle applied to forwarded requests.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import socket
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import recipes
import test_proxy
from botocore.exceptions import ClientError
from conftest import Daemon, User, output
from fakes import tls
from fakes.codeartifact import FakeCodeArtifact
from fakes.http_proxy import FakeHttpProxy
from fakes.npm_registry import FakeNpmRegistry, build_package
from fakes.pypi_index import FakePyPIIndex
from fakes.repository import FakeRepository
from fakes.server import why_not_on_port_80
from fakes.wheels import build_wheel
from test_package_clients import tool
from test_proxy import assert_no_token, get, run, write
from yarl import URL

from wev_daemon import aws
from wev_daemon.proxy import endpoint, rewrite
from wev_daemon.proxy.rewrite import Rewriter, Spellings

# The fixtures: the test's proxy port, the index in CodeArtifact's shape.
port, index = test_proxy.port, test_proxy.index

WHY_NOT_ON_PORT_80 = why_not_on_port_80()
needs_port_80 = pytest.mark.skipif(WHY_NOT_ON_PORT_80 is not None, reason=str(WHY_NOT_ON_PORT_80))
PACKAGE_JSON = (
    '{"name": "app", "version": "1.0.0", "private": true,'
    ' "dependencies": {"corp-widget": "1.0.0"}}\n'
)


@pytest.fixture
def registry(fake: FakeCodeArtifact) -> Iterator[FakeNpmRegistry]:
    """The npm registry as CodeArtifact writes it: ``http://host:80/npm/...`` tarball URLs."""
    if WHY_NOT_ON_PORT_80:
        pytest.skip(WHY_NOT_ON_PORT_80)
    with FakeNpmRegistry(fake, like_codeartifact=True, explicit_port=True) as server:
        server.add(build_package("corp-widget", "1.0.0", "module.exports = 'widget 1.0.0';\n"))
        fake.repository_base_url = server.url
        yield server


@pytest.fixture
def repository(fake: FakeCodeArtifact) -> Iterator[FakeRepository]:
    with FakeRepository() as server:
        fake.repository_base_url = server.url
        yield server


# -- every spelling of the endpoint ------------------------------------------------------------


@needs_port_80
def test_npm_installs_from_a_registry_that_writes_its_port(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, registry: FakeNpmRegistry
) -> None:
    tool("npm")
    (user.project / "package.json").write_text(PACKAGE_JSON)
    write(user, recipes.PROXY_NPM, port)

    result = run(user, recipes.PROXY_NPM.command)

    assert result.returncode == 0, output(result)
    main = user.project / "node_modules" / "corp-widget" / "index.js"
    assert main.read_text() == "module.exports = 'widget 1.0.0';\n"
    lock = (user.project / "package-lock.json").read_text()
    assert f"127.0.0.1:{port}/corp/shared/npm/corp-widget/-/corp-widget-1.0.0.tgz" in lock
    # The tarball came through the proxy, with the token: never from the registry without it.
    tarball = "/npm/shared/corp-widget/-/corp-widget-1.0.0.tgz"
    assert [(a.path, a.valid) for a in registry.attempts if a.path == tarball] == [(tarball, True)]
    assert all(a.valid for a in registry.attempts)
    assert_no_token(fake, lock, result.stdout, result.stderr)


@needs_port_80
def test_pnpm_installs_from_a_registry_that_writes_its_port(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, registry: FakeNpmRegistry
) -> None:
    if shutil.which("pnpm") is None:
        pytest.skip("pnpm is not installed (npm install -g pnpm)")
    (user.project / "package.json").write_text(PACKAGE_JSON)
    write(user, recipes.PROXY_NPM, port)

    result = run(user, f"wev true && pnpm install --store-dir {user.root / 'pnpm-store'}")

    assert result.returncode == 0, output(result)
    main = user.project / "node_modules" / "corp-widget" / "index.js"
    assert main.read_text() == "module.exports = 'widget 1.0.0';\n"
    assert registry.blobs is not None and registry.blobs.downloads == ["corp-widget-1.0.0.tgz"]
    assert registry.attempts and all(a.valid for a in registry.attempts)


@needs_port_80
def test_pip_installs_from_an_index_that_writes_its_port(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    tool("pip")
    build_wheel(user.root / "index", "corp-lib", "1.2.3")
    write(user, recipes.PROXY_PIP, port)
    target = user.root / "target"
    with FakePyPIIndex(
        user.root / "index", fake, like_codeartifact=True, explicit_port=True
    ) as index:
        fake.repository_base_url = index.url
        result = run(
            user,
            f"{recipes.PROXY_PIP.command} --no-cache-dir --target {target}",
            {"PIP_CONFIG_FILE": str(user.project / "pip.conf")},
        )

    assert result.returncode == 0, output(result)
    assert (target / "corp_lib.py").exists()
    wheel = "/pypi/shared/simple/corp-lib/1.2.3/corp_lib-1.2.3-py3-none-any.whl"
    assert (wheel, True) in [(a.path, a.valid) for a in index.attempts]
    assert all(a.valid for a in index.attempts)


@pytest.mark.parametrize(
    "written",
    [
        "https://corp-1.d.codeartifact.eu-west-1.amazonaws.com:443/npm/shared/a/-/a-1.tgz",
        "HTTPS://Corp-1.D.CodeArtifact.eu-west-1.amazonaws.com/npm/shared/a/-/a-1.tgz",
        r"https:\/\/corp-1.d.codeartifact.eu-west-1.amazonaws.com\/npm\/shared\/a/-/a-1.tgz",
    ],
)
def test_every_spelling_of_the_endpoint_is_the_proxys(written: str) -> None:
    spellings = Spellings(
        "https://corp-1.d.codeartifact.eu-west-1.amazonaws.com/npm/shared/",
        "http://127.0.0.1:24000/corp/shared/npm/",
    )
    page = f'{{"tarball": "{written}", "other": "https://registry.npmjs.org/npm/shared/x"}}'
    for size in (1, 7, len(page)):  # a spelling cut by a chunk's end too
        rewriter = Rewriter(spellings, "")
        for start in range(0, len(page), size):
            rewriter.feed(page[start : start + size].encode())
        assert bytes(rewriter.finish()).decode() == (
            '{"tarball": "http://127.0.0.1:24000/corp/shared/npm/a/-/a-1.tgz", '
            '"other": "https://registry.npmjs.org/npm/shared/x"}'
        )
    elsewhere = "https://corp-1.d.codeartifact.eu-west-1.amazonaws.com:8443/npm/shared/a"
    assert spellings.location(elsewhere, URL("https://x/")) == elsewhere


@pytest.mark.parametrize(
    ("location", "proxied"),
    [
        ("/pypi/shared/simple/a/?next=https://example.com/", "simple/a/?next=https://example.com/"),
        ("../b/%7E%zz/", "simple/b/%7E%zz/"),  # its escapes as written, none escaped again
        ("//[not-a-host/x", None),  # no URL: passed on as it came
    ],
)
def test_a_relative_location_is_the_proxys_as_written(location: str, proxied: str | None) -> None:
    spellings = Spellings(
        "https://corp-1.d.codeartifact.eu-west-1.amazonaws.com/pypi/shared/",
        "http://127.0.0.1:24000/corp/shared/pypi/",
    )
    requested = URL("https://corp-1.d.codeartifact.eu-west-1.amazonaws.com/pypi/shared/simple/a/")
    expected = location if proxied is None else "http://127.0.0.1:24000/corp/shared/pypi/" + proxied
    assert spellings.location(location, requested) == expected


def test_a_relative_location_into_the_repository_is_the_proxys(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, repository: FakeRepository
) -> None:
    write(user, recipes.PROXY_PIP, port)
    repository.answer(
        "/pypi/shared/simple/Corp_Lib/",
        b"",
        status=301,
        headers={"Location": "/pypi/shared/simple/corp-lib/"},
    )
    assert user.wev("true").returncode == 0
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/corp/shared/pypi/simple/Corp_Lib/")
        answer = connection.getresponse()
    finally:
        connection.close()

    assert answer.status == 301
    assert answer.getheader("Location") == f"{recipes.proxy_url('pypi', port)}simple/corp-lib/"


# -- failures ------------------------------------------------------------------------------------


def test_a_download_cut_off_upstream_breaks_the_clients_connection(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, repository: FakeRepository
) -> None:
    write(user, recipes.PROXY_PIP, port)
    repository.cut("/pypi/shared/packages/big.whl", bytes(1024 * 1024), after=300 * 1024)
    assert user.wev("true").returncode == 0
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/corp/shared/pypi/packages/big.whl")
        answer = connection.getresponse()
        assert answer.status == 200 and answer.length == 1024 * 1024
        try:
            received, broken = answer.read(), False
        except http.client.IncompleteRead as error:
            received, broken = error.partial, True
        except ConnectionError:
            received, broken = b"", True
    finally:
        connection.close()
    report = user.wev("--status")

    assert broken and b"HTTP/1.1" not in received and len(received) < 1024 * 1024
    assert "cut off" in report.stdout.split("proxy:", 1)[1]


def test_a_page_that_inflates_past_the_cap_is_refused(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, repository: FakeRepository
) -> None:
    write(user, recipes.PROXY_PIP, port)
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    bomb = b"".join(packer.compress(zeros) for _ in range(rewrite.MAX_INFLATED // len(zeros) + 1))
    repository.answer(
        "/pypi/shared/simple/bomb/",
        bomb + packer.flush(),
        headers={"Content-Type": "text/html", "Content-Encoding": "gzip"},
    )
    assert user.wev("true").returncode == 0

    status, body = get(
        recipes.proxy_url("pypi", port) + "simple/bomb/", {"Accept-Encoding": "gzip"}
    )

    assert status == 502
    assert body.count("\n") == 1 and "larger than 128 MiB once inflated" in body


def test_token_failures_answer_by_their_kind() -> None:
    def failure(code: str) -> Exception:
        error = ClientError({"Error": {"Code": code, "Message": "m"}}, "GetAuthorizationToken")
        return aws.fetch_error(error, "CodeArtifact token", None, None)

    assert endpoint.status_of(failure("ExpiredTokenException")) == 401
    assert endpoint.status_of(failure("AccessDeniedException")) == 403
    assert endpoint.status_of(failure("ThrottlingException")) == 502


def test_an_upload_that_asks_to_continue_is_told_to_once_let_in(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, repository: FakeRepository
) -> None:
    # curl (and Maven) send Expect: 100-continue before a large body, and wait for the go.
    write(user, recipes.PROXY_PIP, port)
    repository.answer("/pypi/shared/", b"stored", headers={"Content-Type": "text/plain"})
    assert user.wev("true").returncode == 0
    body = b"x" * 4096
    head = (
        "POST /corp/shared/pypi/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n"
        "Expect: 100-continue\r\n{extra}\r\n"
    )

    def exchange(extra: str) -> bytes:
        """All the proxy answers; the body is sent once it says to go on."""
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head.format(port=port, length=len(body), extra=extra).encode())
            answer = sock.recv(65536)
            if answer.startswith(b"HTTP/1.1 100 "):
                sock.sendall(body)
            while not answer.endswith((b"stored", b"forwarded\n")) and (piece := sock.recv(65536)):
                answer += piece
            return answer

    answered = exchange("")
    refused = exchange("Origin: https://evil.example\r\n")

    assert answered.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ")
    assert answered.endswith(b"stored")
    assert refused.startswith(b"HTTP/1.1 403 "), refused
    posts = [seen for seen in repository.seen if seen.path == "/pypi/shared/"]
    assert len(posts) == 1 and posts[0].authorization is not None


# -- bounds ----------------------------------------------------------------------------------


def test_a_connection_that_sends_no_whole_request_is_closed(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, repository: FakeRepository
) -> None:
    write(user, recipes.PROXY_PIP, port)
    assert user.wev("true").returncode == 0
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as slow:
        slow.sendall(b"GET /corp/shared/pypi/simple/ HTTP/1.1\r\nHost: 127")  # and no more
        assert slow.recv(1024) == b""  # closed by the daemon

    assert time.monotonic() - started < 20


def test_a_tool_that_stops_sending_or_reading_is_cut_off(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """The repository waits for a whole upload, and a download waits for its reader: the
    proxy waits with neither for ever (a tool stopped in a debugger, a suspended job)."""
    write(user, recipes.PROXY_PIP, port)
    with (index.wheel_dir / "corp_big-1.0-py3-none-any.whl").open("wb") as big:
        big.truncate(64 * 1024 * 1024)  # more than every buffer on the way
    assert user.wev("true").returncode == 0
    started = time.monotonic()
    sender = socket.create_connection(("127.0.0.1", port), timeout=60)
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        reader.connect(("127.0.0.1", port))
        reader.sendall(
            f"GET /corp/shared/pypi/packages/corp_big-1.0-py3-none-any.whl HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n\r\n".encode()
        )  # and reads nothing
        sender.sendall(
            f"POST /corp/shared/pypi/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n"
            "--b\r\n".encode()  # and no more
        )
        answer = b""
        while chunk := sender.recv(65536):  # until the daemon closes the connection
            answer += chunk
        deadline = time.monotonic() + 30
        while "read nothing" not in daemon.log and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sender.close()
        reader.close()

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(b"the upload sent nothing for 10 s: cut off\n")
    assert "the tool read nothing for 10 s" in daemon.log
    assert time.monotonic() - started < 30


def test_pages_that_stall_upstream_hold_up_other_pages_for_the_idle_time_at_most(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, repository: FakeRepository
) -> None:
    """Pages are rewritten a few at a time: two that stop half-way must not keep every
    other tool's index page waiting for as long as upstream stays silent."""
    write(user, recipes.PROXY_PIP, port)
    page = b"<html>" + b"x" * 8000 + b"</html>"
    for name in ("a", "b"):
        repository.stall(f"/pypi/shared/simple/{name}/", page, after=6000, seconds=60)
    repository.answer(
        "/pypi/shared/simple/c/", b"<html>c</html>", headers={"Content-Type": "text/html"}
    )
    assert user.wev("true").returncode == 0
    base = recipes.proxy_url("pypi", port) + "simple/"
    with ThreadPoolExecutor(2) as pool:
        stalled = [pool.submit(get, base + name + "/") for name in ("a", "b")]
        time.sleep(1)  # both hold their rewrite
        started = time.monotonic()
        fast = get(base + "c/")
        waited = time.monotonic() - started
        cut = [future.result(timeout=60) for future in stalled]

    assert fast == (200, "<html>c</html>")
    assert waited < 20, waited
    assert [status for status, _ in cut] == [502, 502]
    assert all("stalled for 10 s" in body for _, body in cut), cut


def test_a_download_in_flight_at_stop_holds_up_no_call_after_it(
    user: User, port: int, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """The stopping daemon cuts it off soon enough for the next call's own daemon to start:
    that call gets the loopback URL, never the direct one with the token in it."""
    write(user, recipes.PROXY_PIP, port)
    with (index.wheel_dir / "corp_big-1.0-py3-none-any.whl").open("wb") as big:
        big.truncate(64 * 1024 * 1024)  # more than every buffer on the way
    daemon = Daemon(user)
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        assert user.wev("true").returncode == 0
        reader.connect(("127.0.0.1", port))
        reader.sendall(
            f"GET /corp/shared/pypi/packages/corp_big-1.0-py3-none-any.whl HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n\r\n".encode()
        )  # and reads nothing
        assert reader.recv(12) == b"HTTP/1.1 200"
        stopped = user.wev("--stop")
        after = user.wev("sh", "-c", 'printf %s "$PIP_INDEX_URL"')
    finally:
        reader.close()
        daemon.stop()

    assert stopped.returncode == 0, output(stopped)
    assert (after.returncode, after.stderr) == (0, ""), output(after)
    assert after.stdout == recipes.proxy_url("pypi", port) + "simple/"


def test_proxy_requests_keep_an_idle_exit_daemon_up(
    user: User, port: int, fake: FakeCodeArtifact, repository: FakeRepository
) -> None:
    write(user, recipes.PROXY_PIP, port)
    repository.answer(
        "/pypi/shared/simple/", b"<html></html>", headers={"Content-Type": "text/html"}
    )
    daemon = Daemon(user, args=("--idle-exit", "2", "--idle-exit-with-entries"))
    try:
        assert user.wev("true").returncode == 0
        until = time.monotonic() + 4
        while time.monotonic() < until:  # an IDE at work, with no wev call
            assert get(recipes.proxy_url("pypi", port) + "simple/")[0] == 200
            time.sleep(0.5)
        alive = daemon.process.poll() is None
        exited = daemon.process.wait(15)
    finally:
        daemon.stop()

    assert alive and exited == 0


def test_headers_the_tools_connection_header_names_stay_on_its_hop(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, repository: FakeRepository
) -> None:
    write(user, recipes.PROXY_PIP, port)
    repository.answer(
        "/pypi/shared/simple/", b"<html></html>", headers={"Content-Type": "text/html"}
    )
    assert user.wev("true").returncode == 0

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "GET",
            "/corp/shared/pypi/simple/",
            headers={"Connection": "close, X-Hop-Secret", "X-Hop-Secret": "mine", "X-Kept": "y"},
        )
        status = connection.getresponse().status
    finally:
        connection.close()

    assert status == 200
    [seen] = repository.seen
    assert "x-kept" in seen.header_names and "x-hop-secret" not in seen.header_names


def test_a_bad_proxy_url_is_reported_without_its_password(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, repository: FakeRepository
) -> None:
    write(user, recipes.PROXY_PIP, port)
    # The repository by name, AWS by address: NO_PROXY keeps the AWS calls direct.
    fake.repository_base_url = repository.url.replace("127.0.0.1", "localhost")
    env = {"HTTP_PROXY": "http://alice:S3cretPW@[bad", "NO_PROXY": "127.0.0.1"}
    assert user.wev("true", env=env).returncode == 0

    status, body = get(recipes.proxy_url("pypi", port) + "simple/")
    report = user.wev("--status")

    assert status == 502, body
    assert "***@" in body
    assert all("S3cretPW" not in text for text in (body, report.stdout, daemon.log))


def test_refused_requests_keep_no_idle_exit_daemon_up(
    user: User, port: int, fake: FakeCodeArtifact, repository: FakeRepository
) -> None:
    """A web page that knocks every half second is no activity: the daemon still exits."""
    write(user, recipes.PROXY_PIP, port)
    daemon = Daemon(user, args=("--idle-exit", "2", "--idle-exit-with-entries"))
    try:
        assert user.wev("true").returncode == 0
        url = recipes.proxy_url("pypi", port) + "simple/"
        deadline = time.monotonic() + 15
        while daemon.process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # refused once the daemon has gone
                assert get(url, {"Origin": "https://evil.example"})[0] == 403
            time.sleep(0.5)
        exited = daemon.process.poll()
    finally:
        daemon.stop()

    assert exited == 0


def test_forwarded_requests_trust_the_callers_ca_bundle(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    certificates = tls.issue(user.root / "tls", "127.0.0.1")
    write(user, recipes.PROXY_PIP, port)
    url = recipes.proxy_url("pypi", port) + "simple/"
    with FakeRepository(tls=certificates.server) as repository:
        repository.answer(
            "/pypi/shared/simple/", b"<html>ok</html>", headers={"Content-Type": "text/html"}
        )
        fake.repository_base_url = repository.url
        assert user.wev("true", env={"AWS_CA_BUNDLE": str(certificates.ca_file)}).returncode == 0
        trusted = get(url)
        assert user.wev("true").returncode == 0  # the latest call's context wins
        untrusted = get(url)

    assert repository.url.startswith("https://")
    assert trusted == (200, "<html>ok</html>")
    assert untrusted[0] == 502 and "CERTIFICATE_VERIFY_FAILED" in untrusted[1]


def test_forwarded_requests_trust_the_profiles_ca_bundle_as_aws_calls_do(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    certificates = tls.issue(user.root / "tls", "127.0.0.1")
    config = user.home / ".aws" / "config"
    config.write_text(
        config.read_text()
        + f"\n[profile tls]\nregion = eu-west-1\nca_bundle = {certificates.ca_file}\n"
    )
    credentials = user.home / ".aws" / "credentials"
    default_keys = credentials.read_text().split("\n\n")[0].replace("[default]", "[tls]")
    credentials.write_text(credentials.read_text() + "\n" + default_keys + "\n")
    write(user, recipes.PROXY_PIP, port)
    url = recipes.proxy_url("pypi", port) + "simple/"
    with FakeRepository(tls=certificates.server) as repository:
        repository.answer(
            "/pypi/shared/simple/", b"<html>ok</html>", headers={"Content-Type": "text/html"}
        )
        fake.repository_base_url = repository.url
        assert user.wev("true", env={"AWS_PROFILE": "tls"}).returncode == 0
        trusted = get(url)

    assert trusted == (200, "<html>ok</html>")


def test_forwarded_requests_take_the_callers_proxy_unless_no_proxy_names_the_host(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, repository: FakeRepository
) -> None:
    write(user, recipes.PROXY_PIP, port)
    repository.answer(
        "/pypi/shared/simple/", b"<html>ok</html>", headers={"Content-Type": "text/html"}
    )
    # The repository by name, AWS by address: NO_PROXY keeps the AWS calls direct.
    fake.repository_base_url = repository.url.replace("127.0.0.1", "localhost")
    url = recipes.proxy_url("pypi", port) + "simple/"
    with FakeHttpProxy() as forward:
        env = {"HTTP_PROXY": forward.url, "NO_PROXY": "127.0.0.1"}
        assert user.wev("true", env=env).returncode == 0
        through = get(url)
        passed = forward.targets
        direct_env = {**env, "NO_PROXY": "127.0.0.1,localhost"}
        assert user.wev("true", env=direct_env).returncode == 0
        direct = get(url)
        after = forward.targets

    assert through == direct == (200, "<html>ok</html>")
    assert passed == [f"{fake.repository_base_url}/pypi/shared/simple/"]
    assert after == passed
