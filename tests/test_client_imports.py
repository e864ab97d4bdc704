"""The client's hot path stays cheap: what ``wev CMD`` imports (see PERF.md).

Each check runs a fresh ``python -c`` and compares its ``sys.modules`` with
that of ``python -c pass`` in the same venv and environment, so only the
modules wev adds are judged (site may import things such as ``_distutils_hack``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: Modules whose import costs more than a whole cached ``wev`` call, or that
#: belong to the daemon. A submodule counts as its package.
FORBIDDEN = (
    "json",
    "re",
    "socket",
    "argparse",
    "pathlib",
    "subprocess",
    "yaml",
    "typing",
    "dataclasses",
    "asyncio",
    "aiohttp",
    "botocore",
    "aiobotocore",
    "wev_daemon",
)

PRINT_MODULES = "import sys; print('\\n'.join(sorted(sys.modules)))"

#: Every module a ``wev CMD`` call that a running daemon answers may add to what
#: ``python -c pass`` loads: importing one more costs each call about as much as
#: reading the configuration (PERF.md). Rarer paths (an edit, --status, a terminal's
#: status line, a question, no daemon, an error) load theirs when they happen.
HOT_PATH = frozenset(
    {
        "__future__",
        "_json",
        "_socket",
        "wev_client",
        "wev_client.cli",
        "wev_client.config_files",
        "wev_client.connection",
        "wev_client.execute",
        "wev_client.paths",
        "wev_client.protocol",
        "wev_client.protocol.codec",
        "wev_client.protocol.context",
        "wev_client.protocol.errors",
        "wev_client.protocol.messages",
        "wev_client.transport",
    }
)


def modules_after(code: str, env: dict[str, str], cwd: Path) -> set[str]:
    """``sys.modules`` after running ``code`` in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{PRINT_MODULES}"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def forbidden_in(modules: set[str]) -> list[str]:
    return sorted(
        name
        for name in modules
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    )


class Setup:
    """A project with one wev.yml, a private runtime folder and a clean environment."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.project = root / "project"
        self.runtime = root / "run"
        self.home.mkdir()
        self.project.mkdir()
        self.runtime.mkdir(mode=0o700)
        (self.runtime / "wev").mkdir(mode=0o700)  # as a daemon's start makes it
        (self.project / "wev.yml").write_text("[A, B]: {plugin: {id: wev-echo, values: [a, b]}}\n")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "LANG": "C.UTF-8",
        }
        self.baseline = modules_after("pass", self.env, self.project)

    def added_by(self, code: str) -> set[str]:
        return modules_after(code, self.env, self.project) - self.baseline


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


LOAD = textwrap.dedent(
    """\
    import os
    from wev_client import cli, config_files, paths
    specs = config_files.load(os.getcwd(), os.environ["HOME"], paths.config_cache_path(os.environ))
    assert [spec.names for spec in specs] == [("A", "B")], specs
    """
)


def test_importing_the_cli_adds_no_costly_module(setup: Setup) -> None:
    added = setup.added_by("import wev_client.cli")

    assert "wev_client.cli" in added
    assert forbidden_in(added) == []


def test_the_console_entry_point_adds_no_costly_module(setup: Setup) -> None:
    added = setup.added_by("import wev_client.__main__")

    assert forbidden_in(added) == []


def test_a_cached_config_load_adds_no_costly_module(setup: Setup) -> None:
    first = setup.added_by(LOAD)
    assert "yaml" in first, "the first load parses (else this test proves nothing)"
    assert (setup.runtime / "wev" / "config-cache").is_file()

    added = setup.added_by(LOAD)

    assert forbidden_in(added) == []
    assert "wev_client.yaml_loader" not in added
    assert "platformdirs" not in added, "a private XDG_RUNTIME_DIR needs no platformdirs"


def test_a_cached_config_load_adds_no_module_beyond_the_hot_path(setup: Setup) -> None:
    setup.added_by(LOAD)  # parses, and caches

    added = setup.added_by(LOAD)

    assert sorted(added - HOT_PATH) == []
    assert {"wev_client.cli", "wev_client.transport", "_socket"} <= added  # the check sees them


def test_the_version_command_adds_no_costly_module(setup: Setup) -> None:
    code = textwrap.dedent(
        """\
        import contextlib, io
        from wev_client import cli
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(["--version"], {}) == 0
        """
    )

    assert forbidden_in(setup.added_by(code)) == []


def test_the_check_can_fail(setup: Setup) -> None:
    # The helper really sees what a child imports.
    found = forbidden_in(setup.added_by("import json, wev_daemon"))

    assert {"json", "json.decoder", "re", "wev_daemon"} <= set(found)


#: The launcher that pip before 25.0 (distlib's template) writes for a console script.
OLD_PIP_LAUNCHER = """\
# -*- coding: utf-8 -*-
import re
import sys
from wev_client.cli import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


def imported_by(args: list[str], setup: Setup) -> set[str]:
    """Every module ``python -X importtime ARGS`` imports, start-up included."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        env=setup.env,
        cwd=setup.project,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {
        line.rpartition("|")[2].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and not line.endswith("| package")
    }


def test_the_installed_wev_command_adds_no_costly_module(setup: Setup) -> None:
    """`wev` is our own script (scripts/wev), not a launcher that the installer writes."""
    installed = str(Path(sys.executable).parent / "wev")
    added = imported_by([installed, "--version"], setup) - imported_by(["-c", "pass"], setup)

    assert "wev_client.cli" in added
    assert forbidden_in(added) == []


def test_an_old_pip_launcher_would_import_re(setup: Setup, tmp_path: Path) -> None:
    # What the script above avoids: the same check fails for old pip's launcher.
    launcher = tmp_path / "wev"
    launcher.write_text(OLD_PIP_LAUNCHER)
    added = imported_by([str(launcher), "--version"], setup) - imported_by(["-c", "pass"], setup)

    assert "re" in forbidden_in(added)
