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


class GreetPlugin(Plugin[str]):
    id = "wev-greet"
    properties = frozenset({"word"})
    context_vars = ("GREETED",)

    def parse(self, properties):
        return str(properties.get("word", "hello"))

    async def resolve(self, settings, context):
        return Resolution((f"{settings} {context.env.get('GREETED', 'nobody')}",))
"""


def install_plugin(site: Path) -> None:
    (site / "wev_pair").mkdir(parents=True)
    (site / "wev_pair" / "__init__.py").write_text(PLUGIN)
    info = site / "wev_pair-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wev-pair\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[wev.plugins]\nwev-pair = wev_pair:PairPlugin\nwev-greet = wev_pair:GreetPlugin\n"
    )


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


@pytest.mark.parametrize("no_daemon", [False, True])
def test_a_plugin_depends_on_any_variable_it_names(user: User, no_daemon: bool) -> None:
    """``context_vars`` may name any variable of the caller's, not only its AWS context:
    each caller's value reaches the plugin, and keys what the daemon keeps."""
    install_plugin(user.root / "site")
    extra = {"PYTHONPATH": str(user.root / "site"), "WEV_NO_DAEMON": "1" if no_daemon else "0"}
    user.write("work/project/wev.yml", "GREETING:\n  plugin:\n    id: wev-greet\n")
    daemon = None if no_daemon else Daemon(user, env=extra)
    try:
        greetings = [
            user.wev("sh", "-c", 'printf %s "$GREETING"', env={**extra, "GREETED": name})
            for name in ("ann", "bob", "ann")
        ]
    finally:
        if daemon:
            daemon.stop()

    assert [(r.returncode, r.stdout) for r in greetings] == [
        (0, "hello ann"),
        (0, "hello bob"),
        (0, "hello ann"),
    ], [r.stderr for r in greetings]


def test_plugin_list_in_errors_includes_third_party(user: User) -> None:
    install_plugin(user.root / "site")
    user.write("work/project/wev.yml", "A:\n  plugin:\n    id: wev-nope\n")

    result = user.wev("true", env={"PYTHONPATH": str(user.root / "site"), "WEV_NO_DAEMON": "1"})

    assert result.returncode == 78
    assert "wev-pair" in result.stderr
