"""The loopback proxy (``proxy: true``): real package tools, a real daemon, fakes at the edge.

The repository endpoint is the fake index or npm registry in its CodeArtifact shape
(``like_codeartifact``): pages and packuments carry absolute URLs to its own host and downloads
redirect to a second host. The tools get the README's recipes (``tests/recipes.py``) with the
proxy's port replaced by the test's, and run without wev after one ``wev true`` registered the
repository, as an IDE would.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import recipes
from accounts import as_user, throwaway_user, why_no_throwaway_user
from conftest import BIN, Daemon, User, free_port, output
from fakes.codeartifact import FakeCodeArtifact
from fakes.npm_registry import FakeNpmRegistry, build_package
from fakes.pypi_index import JSON_PAGE, FakePyPIIndex
from fakes.wheels import build_wheel
from recipes import Recipe
from test_package_clients import POETRY_PROJECT, tool, tool_env

from wev_daemon import activation, network, proxy
from wev_daemon.cache import TokenCache
from wev_daemon.plugins import PropertyError
from wev_daemon.plugins.awscodeartifact import CodeArtifactPlugin
from wev_daemon.proxy import owners
from wev_daemon.resolver import Resolver

TOOL_TIMEOUT = 120.0
README = Path(__file__).resolve().parent.parent / "README.md"


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """The daemon's Unix socket accepts before its app (and so the proxy) has started."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@pytest.fixture
def port(user: User) -> int:
    """The test's proxy port, in the environment of every daemon the user starts."""
    chosen = free_port()
    user.env[proxy.PORT_ENV] = str(chosen)
    return chosen


@pytest.fixture
def index(user: User, fake: FakeCodeArtifact) -> Iterator[FakePyPIIndex]:
    wheels = user.root / "index"
    build_wheel(wheels, "corp-lib", "1.2.3")
    build_wheel(wheels, "corp-tool", "2.0.0")
    with FakePyPIIndex(wheels, fake, like_codeartifact=True) as server:
        fake.repository_base_url = server.url
        yield server


@pytest.fixture
def registry(fake: FakeCodeArtifact) -> Iterator[FakeNpmRegistry]:
    with FakeNpmRegistry(fake, like_codeartifact=True) as server:
        server.add(build_package("corp-widget", "1.0.0", "module.exports = 'widget 1.0.0';\n"))
        fake.repository_base_url = server.url
        yield server


def write(user: User, recipe: Recipe, port: int) -> None:
    for file in recipe.files:
        text = file.text.replace(recipes.PROXY_HOST, f"127.0.0.1:{port}")
        with (user.project / file.name).open("a") as out:
            out.write(text)


def run(
    user: User, command: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    environ = {**user.env, **tool_env(user), **(env or {})}
    for name in unset:
        environ.pop(name, None)
    return subprocess.run(
        ["sh", "-c", command],
        cwd=user.project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def assert_no_token(fake: FakeCodeArtifact, *texts: str) -> None:
    for token in fake.issued:
        assert all(token not in text for text in texts), "a token leaked"


def site_packages(user: User) -> Path:
    return next((user.project / ".venv" / "lib").glob("python3*/site-packages"))


# -- the tools -------------------------------------------------------------------------------


def test_pip_conf_installs_through_the_proxy(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    tool("pip")
    write(user, recipes.PROXY_PIP, port)
    target = user.root / "target"

    result = run(
        user,
        f"{recipes.PROXY_PIP.command} -v --no-cache-dir --target {target}",
        {"PIP_CONFIG_FILE": str(user.project / "pip.conf")},
    )

    assert result.returncode == 0, output(result)
    assert (target / "corp_lib.py").read_text().strip() == 'VERSION = "1.2.3"'
    # The page's absolute link led back through the proxy, whose redirect pip followed to the
    # second host.
    paths = [a.path for a in index.attempts]
    assert "/pypi/shared/simple/corp-lib/1.2.3/corp_lib-1.2.3-py3-none-any.whl" in paths
    assert_no_token(fake, result.stdout, result.stderr)
    assert index.blobs is not None and index.blobs.downloads == ["corp_lib-1.2.3-py3-none-any.whl"]
    assert all(a.valid for a in index.attempts)
    value = user.wev("sh", "-c", 'printf %s "$PIP_INDEX_URL"')
    assert value.stdout == recipes.proxy_url("pypi", port) + "simple/"


def test_uv_lock_and_sync_keep_the_token_out_of_the_lockfile(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    tool("uv")
    (user.project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["corp-lib"]\n\n'
    )
    write(user, recipes.PROXY_UV, port)

    result = run(
        user, recipes.PROXY_UV.command, {"UV_PYTHON": str(BIN / "python")}, ("UV_NO_CONFIG",)
    )

    assert result.returncode == 0, output(result)
    assert (site_packages(user) / "corp_lib.py").read_text().strip() == 'VERSION = "1.2.3"'
    lock = (user.project / "uv.lock").read_text()
    assert recipes.proxy_url("pypi", port) + "simple/" in lock
    assert_no_token(fake, lock, result.stdout, result.stderr)


def test_poetry_installs_through_the_proxy(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    tool("poetry", must_run=False)
    (user.project / "pyproject.toml").write_text(POETRY_PROJECT)
    write(user, recipes.PROXY_POETRY, port)

    result = run(user, recipes.PROXY_POETRY.command)

    assert result.returncode == 0, output(result)
    assert (site_packages(user) / "corp_lib.py").read_text().strip() == 'VERSION = "1.2.3"'
    assert_no_token(fake, (user.project / "poetry.lock").read_text(), result.stdout)


def test_pipenv_installs_through_the_proxy(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """No token in pipenv's files: the teardown reads every file under the root, TMPDIR too."""
    tool("pipenv")
    write(user, recipes.PROXY_PIPENV, port)

    result = run(user, recipes.PROXY_PIPENV.command)

    assert result.returncode == 0, output(result)
    assert (site_packages(user) / "corp_lib.py").read_text().strip() == 'VERSION = "1.2.3"'
    assert "${CORP_PYPI_URL}" in (user.project / "Pipfile.lock").read_text()
    assert list(user.tmp.glob("pipenv-request-*.json")), "pipenv's request, token-free"
    assert_no_token(fake, (user.project / "Pipfile.lock").read_text(), result.stdout)


def test_npm_installs_through_the_proxy(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, registry: FakeNpmRegistry
) -> None:
    tool("npm")
    (user.project / "package.json").write_text(
        '{"name": "app", "version": "1.0.0", "private": true,'
        ' "dependencies": {"corp-widget": "1.0.0"}}\n'
    )
    write(user, recipes.PROXY_NPM, port)

    result = run(user, recipes.PROXY_NPM.command)

    assert result.returncode == 0, output(result)
    main = user.project / "node_modules" / "corp-widget" / "index.js"
    assert main.read_text() == "module.exports = 'widget 1.0.0';\n"
    lock = (user.project / "package-lock.json").read_text()
    assert f"127.0.0.1:{port}/corp/shared/npm/corp-widget/-/corp-widget-1.0.0.tgz" in lock
    assert registry.blobs is not None and registry.blobs.downloads == ["corp-widget-1.0.0.tgz"]
    assert all(a.valid for a in registry.attempts)
    assert_no_token(fake, lock, result.stdout, result.stderr)


def test_npm_publishes_through_the_proxy(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, registry: FakeNpmRegistry
) -> None:
    tool("npm")
    write(user, recipes.PROXY_NPM, port)
    # npm publishes only with some credential for the registry; the proxy replaces it.
    with (user.project / ".npmrc").open("a") as npmrc:
        npmrc.write(f"//127.0.0.1:{port}/corp/shared/npm/:_authToken=unused\n")
    (user.project / "package.json").write_text(
        '{"name": "corp-new", "version": "0.1.0", "main": "index.js", "license": "MIT"}\n'
    )
    (user.project / "index.js").write_text("module.exports = 'new';\n")

    result = run(user, f"{recipes.REGISTER}\nnpm publish")

    assert result.returncode == 0, output(result)
    assert [(p.name, p.version) for p in registry.published] == [("corp-new", "0.1.0")]
    assert all(a.valid for a in registry.attempts)
    assert_no_token(fake, result.stdout, result.stderr)


def test_twine_uploads_through_the_proxy(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    tool("twine", must_run=False)
    build_wheel(user.project / "dist", "corp-new", "0.1.0")
    user.write(
        "work/project/wev.yml",
        "TWINE_REPOSITORY_URL:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
        "    repository: shared\n    format: pypi\n    proxy: true\n    values: [endpoint]\n",
    )

    result = run(
        user,
        "wev twine upload --non-interactive --disable-progress-bar dist/*",
        # twine insists on credentials; the proxy puts the token in their place.
        {"TWINE_USERNAME": "wev", "TWINE_PASSWORD": "unused"},
    )

    assert result.returncode == 0, output(result)
    assert [u.filename for u in index.uploads] == ["corp_new-0.1.0-py3-none-any.whl"]
    assert [(a.path, a.valid) for a in index.attempts] == [("/pypi/shared/", True)]
    assert_no_token(fake, result.stdout, result.stderr)


# -- tokens that expire, daemons that restart ------------------------------------------------


def test_a_process_that_kept_the_url_outlives_its_token(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """One shell gets the URL once, installs, waits past the token's expiry, installs again."""
    tool("pip")
    fake.set_lifetime(3)  # the daemon renews after 75% of that
    write(user, recipes.PROXY_PIP, port)
    pip = f"pip install --no-cache-dir --target {user.root / 'target'}"

    result = run(user, f"wev sh -c '{pip} corp-lib && sleep 4 && {pip} corp-tool'")

    assert result.returncode == 0, output(result)
    assert (user.root / "target" / "corp_tool.py").exists()
    first = index.attempts[0]
    later = [a for a in index.attempts if a.time >= first.time + 4]
    assert later and all(a.valid for a in index.attempts)
    assert fake.issued[first.token or ""] < time.time()  # the first token has expired
    assert {a.token for a in later}.isdisjoint({first.token})


def test_the_url_is_the_same_after_a_restart(
    user: User, port: int, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    write(user, recipes.PROXY_PIP, port)
    url = recipes.proxy_url("pypi", port) + "simple/corp-lib/"
    daemon = Daemon(user)
    try:
        before = user.wev("sh", "-c", 'printf %s "$PIP_INDEX_URL"')
        assert get(url)[0] == 200
    finally:
        daemon.stop()
    daemon = Daemon(user)
    try:
        # Without the service manager's socket the port opens with the first wev call that
        # hands out the URL (and registers its route); with it, see the socket-activated test.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        after = user.wev("sh", "-c", 'printf %s "$PIP_INDEX_URL"')
        status, page = get(url)
        # PEP 691 JSON, gzipped upstream: unzipped and rewritten too.
        accept = {"Accept": JSON_PAGE, "Accept-Encoding": "gzip"}
        listing = json.loads(get(url, accept)[1])
    finally:
        daemon.stop()
    assert before.stdout == after.stdout == recipes.proxy_url("pypi", port) + "simple/"
    assert status == 200 and f"127.0.0.1:{port}/corp/shared/pypi/simple/corp-lib/1.2.3/" in page
    [wheel] = listing["files"]
    assert wheel["url"] == (
        f"http://127.0.0.1:{port}/corp/shared/pypi/simple/corp-lib/1.2.3/{wheel['filename']}"
    )
    assert_no_token(fake, page)


def test_no_token_gives_one_readable_line_and_a_status(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    write(user, recipes.PROXY_PIP, port)
    fake.set_lifetime(2)
    assert user.wev("true").returncode == 0
    fake.fail_with(403, "AccessDeniedException", "not authorized to GetAuthorizationToken")
    fake.wait_for_call_count(2, timeout=10)
    time.sleep(2)  # the token from before has expired

    status, body = get(recipes.proxy_url("pypi", port) + "simple/corp-lib/")

    assert status == 403, body
    [line] = body.splitlines()
    assert "/corp/shared/pypi/" in line and "AccessDeniedException" in line
    assert line.removeprefix("wev: ") in daemon.log
    report = user.wev("--status")
    assert f"proxy: http://127.0.0.1:{port} (listening)" in report.stdout
    assert "AccessDeniedException" in report.stdout.split("proxy:", 1)[1]


def test_forget_drops_the_route_with_the_token(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """After switching accounts, the proxy must not fetch again with the old identity."""
    write(user, recipes.PROXY_PIP, port)
    url = recipes.proxy_url("pypi", port) + "simple/corp-lib/"
    assert user.wev("true").returncode == 0 and get(url)[0] == 200

    assert user.wev("--forget").returncode == 0
    assert get(url)[0] == 503
    assert user.wev("true").returncode == 0 and get(url)[0] == 200
    assert user.wev("--forget", "--all").returncode == 0
    assert get(url)[0] == 503
    assert fake.call_count == 2


def test_without_a_daemon_the_entry_gets_the_direct_url(
    user: User, port: int, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    """CI with WEV_NO_DAEMON=1 runs the same wev.yml: the tool gets the endpoint and token."""
    write(user, recipes.PROXY_PIP, port)

    result = user.wev("sh", "-c", 'printf %s "$PIP_INDEX_URL"', env={"WEV_NO_DAEMON": "1"})

    assert result.returncode == 0, result.stderr
    [token] = fake.issued
    assert result.stdout == index.index_url(token, "shared")


def test_without_a_daemon_an_npm_entry_gets_the_endpoint_without_the_token(
    user: User, port: int, fake: FakeCodeArtifact
) -> None:
    """A registry URL cannot carry the token: CI must hand it to npm another way."""
    write(user, recipes.PROXY_NPM, port)

    result = user.wev("sh", "-c", 'printf %s "$NPM_CONFIG_REGISTRY"', env={"WEV_NO_DAEMON": "1"})

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{fake.url}/npm/shared/"


# -- who gets in -----------------------------------------------------------------------------


def test_the_proxy_answers_its_own_host_only(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    write(user, recipes.PROXY_PIP, port)
    assert user.wev("true").returncode == 0
    url = recipes.proxy_url("pypi", port) + "simple/"

    assert get(url)[0] == 200
    assert get(url, {"Host": f"localhost:{port}"})[0] == 200
    status, body = get(url, {"Host": f"rebound.example:{port}"})
    assert status == 421 and "not rebound.example" in body
    before = len(index.attempts)
    for climb in ("..", "%2e%2e", "%2E.", "..%2f..", "..%5c.."):  # as written, or as servers decode
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:  # http.client sends the path as written
            connection.request("GET", f"/corp/shared/pypi/simple/{climb}/{climb}/other/pypi/")
            assert connection.getresponse().status == 400, climb
        finally:
            connection.close()
    assert len(index.attempts) == before  # none reached the repository


WHY_NO_STRANGER = why_no_throwaway_user()


@pytest.mark.skipif(WHY_NO_STRANGER is not None, reason=str(WHY_NO_STRANGER))
def test_another_user_is_refused(
    user: User, port: int, daemon: Daemon, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    write(user, recipes.PROXY_PIP, port)
    assert user.wev("true").returncode == 0
    url = recipes.proxy_url("pypi", port) + "simple/corp-lib/"
    fetch = (
        "import sys, urllib.request as r, urllib.error as e\n"
        "try: print(r.urlopen(sys.argv[1], timeout=30).status)\n"
        "except e.HTTPError as x: print(x.code, x.read().decode().strip())\n"
    )
    with throwaway_user() as stranger:
        refused = subprocess.run(
            [*as_user(stranger), "/usr/bin/python3", "-c", fetch, url],
            env={"PATH": "/usr/bin:/bin", "NO_PROXY": "127.0.0.1"},
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert refused.stdout.startswith("403 wev: a connection from uid "), output(refused)
    assert f"uid {stranger.pw_uid}:" in refused.stdout
    assert_no_token(fake, refused.stdout)
    assert get(url)[0] == 200  # its own user still gets in


def test_connection_uid_names_the_owner_of_a_loopback_socket() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.create_connection(server.getsockname()),
    ):
        accepted, _ = server.accept()
        with accepted:
            owner = owners.connection_uid(accepted.getpeername(), accepted.getsockname())
    assert owner == (os.getuid() if os.path.exists("/proc/net/tcp") else None)


def test_the_default_port_is_fixed_per_user() -> None:
    assert proxy.port_from_environ({}) == proxy.default_port(os.getuid())
    assert (
        proxy.default_port(1000) == 24000 and proxy.port_from_environ({"WEV_PROXY_PORT": "9"}) == 9
    )
    assert all(proxy.default_port(uid) < 32768 for uid in range(0, 70000, 997))


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"proxy": True}, "'proxy' needs 'repository' and 'format'"),
        ({"repository": "r", "format": "nuget", "proxy": True}, "format nuget is not proxied"),
        ({"repository": "r", "format": "npm", "proxy": "yes"}, "'proxy' must be true or false"),
        (
            {"repository": "r", "format": "pypi", "proxy": True, "values": ["token"]},
            "token is not handed out with proxy: true",
        ),
    ],
)
def test_bad_proxy_settings_are_refused(properties: dict[str, object], message: str) -> None:
    with pytest.raises(PropertyError, match=message):
        CodeArtifactPlugin().parse({"domain": "corp", **properties})


def test_the_route_is_made_of_the_settings_only() -> None:
    plugin = CodeArtifactPlugin()
    pypi = plugin.parse({"domain": "corp", "repository": "shared", "format": "pypi", "proxy": True})
    npm = plugin.parse(
        {"domain": "corp", "account": "012345678901", "repository": "a b", "format": "npm"}
    )
    assert pypi.values == ("index_url",)
    assert proxy.route_path(pypi) == "/corp/shared/pypi/"
    assert proxy.route_path(npm) == "/corp-012345678901/a%20b/npm/"


# -- the README ------------------------------------------------------------------------------


def test_readme_has_the_tested_proxy_recipes() -> None:
    text = README.read_text()
    start = text.find("\n## Long-running tools and IDEs\n")
    assert start >= 0, "paste `python tests/recipes.py proxy` into README.md"
    end = text.find("\n## ", start + 1)
    section = text[start + 1 : end + 1 if end >= 0 else len(text)]
    assert section.strip() == recipes.proxy_section().strip()


def test_upstream_goes_through_the_callers_http_proxy_unless_no_proxy_names_it() -> None:
    url = "https://corp-1.d.codeartifact.eu-west-1.amazonaws.com/pypi/shared/"
    env = {"HTTPS_PROXY": "http://proxy.corp:3128"}

    assert network.proxy_for(url, env) == "http://proxy.corp:3128"
    assert network.proxy_for(url, {**env, "NO_PROXY": "localhost,.amazonaws.com"}) is None
    assert network.proxy_for(url, {"HTTP_PROXY": "http://proxy.corp:3128"}) is None


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_where_uids_are_unknown_the_urls_secret_lets_in(tmp_path: Path) -> None:
    """macOS: the URL's userinfo (pip, uv, Poetry) or npm's bearer token must be the secret."""
    server = proxy.Proxy(
        port=free_port(), secret_file=str(tmp_path / "s" / "secret"), uid_known=False
    )
    resolver = Resolver(cache=TokenCache())
    server.attach(resolver)
    await server.ensure_listening()
    try:
        secret = (tmp_path / "s" / "secret").read_text().strip()
        assert (tmp_path / "s" / "secret").stat().st_mode & 0o777 == 0o600
        settings = CodeArtifactPlugin().parse(
            {"domain": "corp", "repository": "shared", "format": "pypi", "proxy": True}
        )
        url = server.endpoint_url(settings)
        assert url == f"http://wev:{secret}@127.0.0.1:{server.port}/corp/shared/pypi/"
        plain = f"{server.base}/corp/shared/pypi/simple/"
        async with aiohttp.ClientSession() as session:
            statuses = []
            for auth in (
                "",
                basic("wev", "wrong"),
                basic("wev", secret),
                f"Bearer {secret}",
                "Bearer nope",
            ):
                # A new connection each: the verdict holds for a connection's life.
                headers = {"Connection": "close", **({"Authorization": auth} if auth else {})}
                async with session.get(plain, headers=headers) as response:
                    statuses.append(response.status)
        # 503: let in, but no wev call registered the repository yet.
        assert statuses == [403, 403, 503, 503, 403]
    finally:
        await server.close()


async def test_a_secret_that_cannot_be_made_leaves_the_proxy_down_not_the_daemon(
    tmp_path: Path,
) -> None:
    """macOS, with a read-only state folder: the reason goes to the wev call and --status."""
    (tmp_path / "state").write_text("")  # a file where the folder would be
    server = proxy.Proxy(
        port=free_port(), secret_file=str(tmp_path / "state" / "wev" / "secret"), uid_known=False
    )
    server.attach(Resolver(cache=TokenCache()))
    try:
        with pytest.raises(proxy.ProxyUnavailable, match=r"secret .* cannot be made: Not a dir"):
            await server.ensure_listening()
        status = server.status()
    finally:
        await server.close()
    assert status["listening"] is False
    assert "cannot be made: Not a directory" in str(status["error"])


# -- the service manager's socket ------------------------------------------------------------

# What systemd does between fork and exec for wev.socket and wev-proxy.socket: fds 3 and 4,
# named, and LISTEN_PID naming the very process that reads them.
EXEC_WITH_TWO_SOCKETS = """
import fcntl, os, sys
copies = [fcntl.fcntl(int(fd), fcntl.F_DUPFD_CLOEXEC, 10) for fd in sys.argv[1:3]]
for target, fd in zip((3, 4), copies):
    os.dup2(fd, target)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[3], sys.argv[3:])
"""


def test_a_socket_activated_daemon_serves_the_proxy_on_the_service_managers_port(
    user: User, fake: FakeCodeArtifact, index: FakePyPIIndex
) -> None:
    folder = Path(user.socket).parent
    folder.mkdir(mode=0o700)
    write(user, recipes.PROXY_PIP, free_port())  # the unit's port wins over WEV_PROXY_PORT
    with (
        socket.socket(socket.AF_UNIX) as unix,
        socket.create_server(("127.0.0.1", 0)) as tcp,
    ):
        unix.bind(user.socket)
        unix.listen(8)
        port = tcp.getsockname()[1]
        log = user.root / "activated.log"
        with log.open("wb") as out:
            daemon = subprocess.Popen(
                [
                    *(sys.executable, "-c", EXEC_WITH_TWO_SOCKETS),
                    *(str(unix.fileno()), str(tcp.fileno())),
                    *(str(BIN / "wev-daemon"), "--log-level", "DEBUG"),
                ],
                pass_fds=[unix.fileno(), tcp.fileno()],
                env={**user.env, "LISTEN_FDS": "2", "LISTEN_FDNAMES": "wev.socket:proxy"},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        try:
            wait_for_port(port)
            deadline = time.monotonic() + 10
            status, body = 0, ""
            while status != 503 and time.monotonic() < deadline:  # the proxy, from the start
                status, body = get(f"http://127.0.0.1:{port}/corp/shared/pypi/simple/")
                time.sleep(0.05)
            assert status == 503, (status, body, log.read_text())
            # Never the daemon's own routes over TCP.
            assert get(f"http://127.0.0.1:{port}/v1/status")[0] == 503
            value = user.wev("sh", "-c", 'printf %s "$PIP_INDEX_URL"')
            assert value.stdout == recipes.proxy_url("pypi", port) + "simple/", value.stderr
            page = get(f"{value.stdout}corp-lib/")
        finally:
            daemon.terminate()
            daemon.wait(10)
    assert page[0] == 200 and f"127.0.0.1:{port}/corp/shared/pypi/simple/corp-lib/" in page[1]


def test_only_a_loopback_socket_named_proxy_may_be_tcp() -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as loopback,
        socket.create_server(("0.0.0.0", 0)) as anywhere,
    ):
        assert activation._checked(os.dup(loopback.fileno()), "proxy", "systemd").is_proxy
        for sock, name in ((anywhere, "proxy"), (loopback, "wev.socket")):
            fd = os.dup(sock.fileno())
            try:
                with pytest.raises(activation.BadInheritedSocket, match="not a Unix stream"):
                    activation._checked(fd, name, "systemd")
            finally:
                os.close(fd)
