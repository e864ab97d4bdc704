"""A third-party plugin, installed beside wev, resolves a list key: no edit to wev needed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import Daemon, User

PLUGIN = """
from wev_daemon.plugins import Plugin, PropertyError, Resolution


class PairPlugin(Plugin[tuple[str, str]]):
    id = "wev-pair"
    properties = frozenset({"left", "right"})

    def parse(self, properties):
        if "left" not in properties or "right" not in properties:
            raise PropertyError("'left' and 'right' are required")
        return (str(properties["left"]), str(properties["right"]))

    def value_count(self, settings):
        return 2

    async def resolve(self, settings, context):
        return Resolution(settings)
"""


def install_plugin(site: Path) -> None:
    (site / "wev_pair").mkdir(parents=True)
    (site / "wev_pair" / "__init__.py").write_text(PLUGIN)
    info = site / "wev_pair-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wev-pair\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[wev.plugins]\nwev-pair = wev_pair:PairPlugin\n")


@pytest.mark.parametrize("no_daemon", [False, True])
def test_third_party_plugin_sets_a_list_key(user: User, no_daemon: bool) -> None:
    install_plugin(user.root / "site")
    extra = {"PYTHONPATH": str(user.root / "site")}
    user.write(
        "work/project/wev.yml",
        textwrap.dedent(
            """\
            [LEFT, RIGHT]:
              plugin:
                id: wev-pair
                left: one
                right: two
            """
        ),
    )
    daemon = None if no_daemon else Daemon(user, env=extra)
    try:
        result = user.wev(
            "sh",
            "-c",
            'printf "%s %s" "$LEFT" "$RIGHT"',
            env={**extra, "WEV_NO_DAEMON": "1" if no_daemon else "0"},
        )
    finally:
        if daemon:
            daemon.stop()

    assert result.returncode == 0, result.stderr
    assert result.stdout == "one two"


def test_plugin_list_in_errors_includes_third_party(user: User) -> None:
    install_plugin(user.root / "site")
    user.write("work/project/wev.yml", "A:\n  plugin:\n    id: wev-nope\n")

    result = user.wev("true", env={"PYTHONPATH": str(user.root / "site"), "WEV_NO_DAEMON": "1"})

    assert result.returncode == 78
    assert "wev-pair" in result.stderr
