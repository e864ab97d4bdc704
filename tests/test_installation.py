"""A plugin installed into wev's environment works on the next call, with no manual restart.

The daemon notices that what is installed changed (``wev_daemon.installation``)
and the client replaces it, as for a newer wev. Each test gets an environment
of its own: a venv whose site folder adds this one's (where wev is), so that
a plugin, a distribution built here with a ``wev.plugins`` entry point, is
installed by the real pip into it and never into the shared venv, where other
tests' daemons would see it. The real client runs with that venv's Python,
and starts the daemon with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest
from conftest import COMMAND_TIMEOUT, User
from fakes.codeartifact import FakeCodeArtifact
from fakes.wheels import build_wheel

PLUGIN_MODULE = """
from wev_daemon.plugins import Plugin, Resolution


class GreetingPlugin(Plugin[str]):
    id = "{id}"
    properties = frozenset({{"greeting"}})

    def parse(self, properties):
        return str(properties.get("greeting", "hello"))

    async def resolve(self, settings, context):
        return Resolution((settings + " from a plugin",))
"""
TOKEN = "CODEARTIFACT_AUTH_TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
PRINT = ("sh", "-c", 'printf %s "$GREETING"')


class Environment:
    """A venv that sees wev's environment through a .pth file, and pip to install into it."""

    def __init__(self, root: Path) -> None:
        self.root = root / "venv"
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(self.root)],
            check=True,
            timeout=COMMAND_TIMEOUT,
        )
        self.python = str(self.root / "bin" / "python")
        self.site = Path(
            subprocess.run(
                [self.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                check=True,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            ).stdout.strip()
        )
        outer = sysconfig.get_path("purelib")
        (self.site / "_wev_under_test.pth").write_text(f"import site; site.addsitedir({outer!r})\n")

    def pip(self, *args: str) -> None:
        subprocess.run(
            [self.python, "-m", "pip", "--disable-pip-version-check", "-q", *args],
            check=True,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
        )

    def wev(
        self, user: User, *args: str, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The real client, run by this environment's Python (as its ``wev`` script would)."""
        return subprocess.run(
            [self.python, "-m", "wev_client", *args],
            cwd=cwd or user.project,
            env=user.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )

    def daemon_pid(self, user: User) -> int:
        result = self.wev(user, "--status", "--json")
        assert result.returncode == 0, result.stderr
        pid = json.loads(result.stdout)["pid"]
        assert isinstance(pid, int)
        return pid


@pytest.fixture
def environment(user: User) -> Environment:
    return Environment(user.root)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def greeting_plugin(user: User) -> tuple[Path, str, str, str]:
    """A plugin's wheel, its id, distribution and module; the project's wev.yml uses it."""
    unique = uuid.uuid4().hex[:12]
    plugin_id = name = f"wev-greeting-{unique}"
    module = name.replace("-", "_")
    wheel = build_wheel(
        user.root / "wheels",
        name,
        "1.0",
        module=PLUGIN_MODULE.format(id=plugin_id),
        entry_points=f"[wev.plugins]\n{plugin_id} = {module}:GreetingPlugin\n",
    )
    user.write(
        "work/project/wev.yml", f"GREETING:\n  plugin:\n    id: {plugin_id}\n    greeting: hi\n"
    )
    return wheel, plugin_id, name, module


def test_a_plugin_installed_while_the_daemon_runs_works_on_the_next_call(
    user: User, environment: Environment
) -> None:
    wheel, plugin_id, name, module = greeting_plugin(user)
    try:
        before = environment.wev(user, *PRINT)
        old = environment.daemon_pid(user)
        assert before.returncode == 78, before.stderr
        assert f"unknown plugin '{plugin_id}'" in before.stderr

        environment.pip("install", "--no-index", "--no-deps", str(wheel))
        assert list(environment.site.glob(f"{module}-1.0.dist-info"))
        after = environment.wev(user, *PRINT)

        assert after.returncode == 0, after.stderr
        assert after.stdout == "hi from a plugin"
        assert environment.daemon_pid(user) != old and not alive(old)

        environment.pip("uninstall", "-y", name)
        gone = environment.wev(user, *PRINT)
        assert gone.returncode == 78 and f"unknown plugin '{plugin_id}'" in gone.stderr
    finally:
        environment.wev(user, "--stop")


def test_a_plugin_that_cannot_be_loaded_fails_its_entries_alone(
    user: User, environment: Environment, fake: FakeCodeArtifact
) -> None:
    """Installed while the daemon runs: one line for its entries, every other one served."""
    _, plugin_id, _, _ = greeting_plugin(user)
    broken = build_wheel(
        user.root / "broken",
        plugin_id,
        "1.0",
        module='raise ImportError("needs libfoo")\n',
        entry_points=f"[wev.plugins]\n{plugin_id} = {plugin_id.replace('-', '_')}:GreetingPlugin\n",
    )
    user.write("work/plain/wev.yml", TOKEN)
    try:
        assert environment.wev(user, "true", cwd=user.root / "work" / "plain").returncode == 0
        environment.pip("install", "--no-index", "--no-deps", str(broken))
        failed = environment.wev(user, *PRINT)
        served = environment.wev(
            user, "printenv", "CODEARTIFACT_AUTH_TOKEN", cwd=user.root / "work" / "plain"
        )
    finally:
        environment.wev(user, "--stop")

    assert failed.returncode == 78, failed.stderr
    [line] = failed.stderr.splitlines()
    assert f"{plugin_id}: installed, but it cannot be loaded (ImportError: needs libfoo)" in line
    assert served.returncode == 0, served.stderr
    assert fake.is_valid_token(served.stdout.strip())


def test_installing_something_else_keeps_the_daemon_and_its_tokens(
    user: User, environment: Environment, fake: FakeCodeArtifact
) -> None:
    wheel = build_wheel(user.root / "wheels", f"unrelated-{uuid.uuid4().hex[:12]}", "1.0")
    user.write("work/project/wev.yml", TOKEN)
    try:
        first = environment.wev(user, "true")
        old = environment.daemon_pid(user)

        environment.pip("install", "--no-index", "--no-deps", str(wheel))
        second = environment.wev(user, "true")

        assert first.returncode == second.returncode == 0, second.stderr
        assert environment.daemon_pid(user) == old
        assert fake.call_count == 1  # the token was kept
    finally:
        environment.wev(user, "--stop")


def test_a_daemon_another_installation_started_makes_way_for_this_ones_plugins(
    user: User, fake: FakeCodeArtifact
) -> None:
    """A tool's environment holds wev too (keyring's, for uv) and starts the daemon first;
    a plugin installed in wev's own environment still works on the next call."""
    tool, own = Environment(user.root / "tool"), Environment(user.root / "own")
    wheel, plugin_id, _, _ = greeting_plugin(user)
    own.pip("install", "--no-index", "--no-deps", str(wheel))
    elsewhere = user.write("work/elsewhere/wev.yml", TOKEN).parent
    try:
        assert tool.wev(user, "true", cwd=elsewhere).returncode == 0
        first = tool.daemon_pid(user)
        refused = tool.wev(user, *PRINT)  # the tool's wev has no such plugin: it replaces nothing

        served = own.wev(user, *PRINT)
        second = own.daemon_pid(user)
        again = tool.wev(user, "true", cwd=elsewhere)

        assert refused.returncode == 78 and f"unknown plugin '{plugin_id}'" in refused.stderr
        assert served.returncode == 0, served.stderr
        assert served.stdout == "hi from a plugin"
        assert second != first and not alive(first)
        assert again.returncode == 0, again.stderr
        assert own.daemon_pid(user) == second  # and the tool's calls leave it be
        assert fake.call_count == 2  # one token for each daemon, no more
    finally:
        own.wev(user, "--stop")
