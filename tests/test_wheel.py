"""The wheel installs this wev: built with ``uv build``, installed into a fresh venv.

The fresh venv's pip is the one its Python bundles (older than pip 25 here),
whose console-script launchers import ``re``: ``wev`` must still be our own
script. Dependencies come from the package index, as for a user.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from wev_client import __version__

ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).parent / "uv"
#: Building takes seconds; installing downloads wev's dependencies (botocore is large).
BUILD_TIMEOUT = 300
INSTALL_TIMEOUT = 600


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [str(UV), "build", "--wheel", "--out-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    [path] = out.glob("wev-*.whl")
    return path


def test_the_wheel_holds_both_packages_the_units_and_our_wev_script(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    dist = f"wev-{__version__}"

    assert {"wev_client/cli.py", "wev_daemon/__main__.py", f"{dist}.data/scripts/wev"} <= set(names)
    assert f"{dist}.data/scripts/docker-credential-wev" in names
    assert {"wev_daemon/units/wev.socket", "wev_daemon/units/wev.service"} <= set(names)
    assert not [name for name in names if name.split("/")[0] in ("tests", "examples", "bench")]
    assert not [name for name in names if "fakes" in name]
    entry_points = configparser.ConfigParser()
    entry_points.read_string(
        zipfile.ZipFile(wheel).read(f"{dist}.dist-info/entry_points.txt").decode()
    )
    scripts = entry_points["console_scripts"]
    assert scripts["wev-daemon"] == "wev_daemon.__main__:main"
    assert "wev" not in scripts, "wev is a script of ours, not a generated launcher"


def test_the_wheel_installs_a_working_wev_into_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEV_", "AWS_", "VIRTUAL_"))}
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], check=True, timeout=BUILD_TIMEOUT, env=env
    )
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
        env=env,
    )
    assert installed.returncode == 0, installed.stderr

    script = (venv / "bin" / "wev").read_text()
    assert script.splitlines()[0] in (f"#!{venv}/bin/python", f"#!{venv}/bin/python3")
    assert "import re" not in script and "from wev_client.cli import main" in script

    version = subprocess.run(
        [str(venv / "bin" / "wev"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    assert version.stdout == f"wev {__version__}\n"

    home, project, runtime = tmp_path / "home", tmp_path / "project", tmp_path / "run"
    home.mkdir()
    project.mkdir()
    runtime.mkdir(mode=0o700)
    (project / "wev.yml").write_text("GREETING:\n  plugin:\n    id: wev-echo\n    value: hello\n")
    run = subprocess.run(
        [str(venv / "bin" / "wev"), "sh", "-c", 'printf %s "$GREETING"'],
        cwd=project,
        env={
            "PATH": env.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "WEV_NO_DAEMON": "1",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "hello", "")
