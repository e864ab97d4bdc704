"""Finding, parsing, merging and caching ``wev.yml`` files (``config_files``, ``config_parse``).

In-process tests call ``config_files.load(cwd, home, cache_path)`` on folders under
``tmp_path``; the few that need a fresh interpreter (is the cache really used?
does bad input ever show a traceback?) run ``python -c`` in a subprocess.
"""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wev_client import config_files
from wev_client.protocol.errors import ConfigError
from wev_client.protocol.messages import VariableSpec

ECHO = "wev-echo"


class Project:
    """A home folder, a working folder below ``tmp_path/work`` and a private cache folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.work = root / "work"
        self.cwd = self.work / "team" / "project"
        self.run = root / "run"
        for folder in (self.home, self.cwd):
            folder.mkdir(parents=True)
        self.run.mkdir(mode=0o700)
        self.cache = self.run / "config-cache"

    def write(self, folder: Path, name: str, text: str) -> Path:
        """Write a config file."""
        path = folder / name
        path.write_text(textwrap.dedent(text))
        return path

    def load(
        self, cwd: Path | None = None, *, home: Path | str | None = "default"
    ) -> dict[str, VariableSpec]:
        """The specs for ``cwd`` keyed by label, through the cache."""
        home_path = self.home if home == "default" else home
        specs = config_files.load(
            str(cwd or self.cwd), None if home_path is None else str(home_path), str(self.cache)
        )
        return {spec.label: spec for spec in specs}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def error_of(project: Project, cwd: Path | None = None) -> str:
    """The ConfigError message for the project's configuration (which must be bad)."""
    with pytest.raises(ConfigError) as caught:
        project.load(cwd)
    message = str(caught.value)
    assert "\n" not in message, "a config error is one line"
    return message


# -- which files, in which order -----------------------------------------------


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        (".wev.yml", "wev.yml"),
        ("wev.yml", ".wev.user.yml"),
        (".wev.user.yml", "wev.user.yml"),
        (".wev.yml", "wev.user.yml"),
    ],
)
def test_file_names_in_one_folder_have_a_fixed_precedence(
    project: Project, lower: str, higher: str
) -> None:
    project.write(project.cwd, higher, f"TOKEN: {{plugin: {{id: {ECHO}, value: from-higher}}}}")
    project.write(project.cwd, lower, f"TOKEN: {{plugin: {{id: {ECHO}, value: from-lower}}}}")

    spec = project.load()["TOKEN"]

    assert spec.plugin["value"] == "from-higher"
    assert spec.sources == (str(project.cwd / lower), str(project.cwd / higher))


def test_all_four_names_are_read_lowest_first(project: Project) -> None:
    for name in (".wev.user.yml", "wev.yml", "wev.user.yml", ".wev.yml"):
        project.write(project.cwd, name, f"TOKEN: {{plugin: {{id: {ECHO}, {name}: 1}}}}")

    spec = project.load()["TOKEN"]

    assert spec.sources == tuple(str(project.cwd / name) for name in config_files.FILE_NAMES)
    assert set(spec.plugin) == {"id", *config_files.FILE_NAMES}


def test_folders_from_home_then_root_down_to_the_working_folder(project: Project) -> None:
    # home is not an ancestor here; it is still read, and first.
    levels = [project.home, project.root, project.work, project.work / "team", project.cwd]
    for index, folder in enumerate(levels):
        project.write(folder, "wev.yml", f"TOKEN: {{plugin: {{id: {ECHO}, level: {index}}}}}")

    spec = project.load()["TOKEN"]

    assert spec.plugin["level"] == len(levels) - 1
    assert spec.sources == tuple(str(folder / "wev.yml") for folder in levels)


def test_an_ancestor_overrides_home_and_the_working_folder_overrides_both(
    project: Project,
) -> None:
    project.write(project.home, "wev.yml", f"A: {{plugin: {{id: {ECHO}, x: home, y: home}}}}")
    project.write(project.work, "wev.yml", f"A: {{plugin: {{id: {ECHO}, x: work}}}}")
    project.write(project.cwd, "wev.yml", f"B: {{plugin: {{id: {ECHO}}}}}")

    specs = project.load()

    assert specs["A"].plugin == {"id": ECHO, "x": "work", "y": "home"}
    assert set(specs) == {"A", "B"}


def test_folders_below_the_working_folder_and_siblings_are_not_read(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    sibling = project.work / "team" / "other"
    sibling.mkdir()
    project.write(sibling, "wev.yml", f"B: {{plugin: {{id: {ECHO}}}}}")

    assert set(project.load(project.work)) == set()
    assert set(project.load()) == {"A"}


def test_home_that_is_an_ancestor_is_read_once_at_the_lowest_precedence(
    project: Project,
) -> None:
    cwd = project.home / "code" / "app"
    cwd.mkdir(parents=True)
    home_file = project.write(project.home, "wev.yml", f"A: {{plugin: {{id: {ECHO}, x: home}}}}")
    root_file = project.write(project.root, "wev.yml", f"A: {{plugin: {{id: {ECHO}, x: root}}}}")

    spec = project.load(cwd)["A"]

    # Read once: the root folder's file (an ancestor above home) still wins over home.
    assert spec.sources == (str(home_file), str(root_file))
    assert spec.plugin["x"] == "root"


def test_home_given_through_a_symlink_is_still_read_once(project: Project) -> None:
    link = project.root / "home-link"
    link.symlink_to(project.home)
    cwd = project.home / "app"
    cwd.mkdir()
    project.write(project.home, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")

    spec = project.load(cwd, home=link)["A"]

    assert len(spec.sources) == 1


def test_working_folder_given_through_a_symlink_reads_the_real_ancestors(
    project: Project,
) -> None:
    # As os.getcwd() would report it: the physical folder's ancestors count.
    link = project.root / "shortcut"
    link.symlink_to(project.cwd)
    project.write(project.work, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")

    assert set(project.load(link)) == {"A"}


def test_without_home_only_the_walk_is_read(project: Project) -> None:
    project.write(project.home, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    project.write(project.cwd, "wev.yml", f"B: {{plugin: {{id: {ECHO}}}}}")

    assert set(project.load(home=None)) == {"B"}
    assert set(project.load(home="")) == {"B"}


def test_no_files_at_all_is_an_empty_configuration(project: Project) -> None:
    assert project.load() == {}


def test_a_symlink_loop_in_the_folder_walk_terminates(project: Project) -> None:
    loop = project.cwd / "loop"
    loop.symlink_to(".")
    deep = loop / "loop" / "loop" / "loop"
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")

    started = time.monotonic()
    spec = project.load(deep)["A"]

    assert time.monotonic() - started < 5
    assert spec.sources == (str(project.cwd / "wev.yml"),), "the same file read once"


def test_a_config_file_that_is_a_symlink_loop_is_a_clear_error(project: Project) -> None:
    (project.cwd / "wev.yml").symlink_to(project.cwd / "wev.yml")

    message = error_of(project)

    assert str(project.cwd / "wev.yml") in message


def test_a_config_file_that_is_a_symlink_is_followed(project: Project) -> None:
    shared = project.write(project.root, "shared.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    (project.cwd / "wev.yml").symlink_to(shared)

    assert set(project.load()) == {"A"}


def test_a_dangling_symlink_configures_nothing(project: Project) -> None:
    (project.cwd / "wev.yml").symlink_to(project.root / "missing.yml")

    assert project.load() == {}


# -- the shape of a file ------------------------------------------------------------


def test_a_list_key_sets_several_variables(project: Project) -> None:
    project.write(
        project.cwd,
        "wev.yml",
        f"""\
        [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN]:
          plugin: {{id: {ECHO}}}
        """,
    )

    (spec,) = project.load().values()

    assert spec.names == ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    assert spec.label == "[AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN]"


def test_block_style_list_keys_and_plugin_properties(project: Project) -> None:
    project.write(
        project.cwd,
        "wev.yml",
        """\
        ? - A
          - B
        : plugin:
            id: wev-echo
            values: [one, two]
            nested: {deep: true, when: 2024-01-02}
        """,
    )

    spec = project.load()["[A, B]"]

    assert spec.plugin == {
        "id": ECHO,
        "values": ["one", "two"],
        "nested": {"deep": True, "when": "2024-01-02"},  # dates as text, ready for JSON
    }


def test_the_same_list_key_in_two_files_is_one_entry(project: Project) -> None:
    project.write(project.work, "wev.yml", f"[A, B]: {{plugin: {{id: {ECHO}, x: 1}}}}")
    project.write(project.cwd, "wev.yml", "[A, B]: {plugin: {y: 2}}")

    assert project.load()["[A, B]"].plugin == {"id": ECHO, "x": 1, "y": 2}


def test_meta_keys_of_the_earlier_wev_are_ignored(project: Project) -> None:
    project.write(
        project.cwd, "wev.yml", f"__meta__: {{anything: [1, 2]}}\nA: {{plugin: {{id: {ECHO}}}}}"
    )

    assert set(project.load()) == {"A"}


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n", "~\n"])
def test_an_empty_file_configures_nothing(project: Project, text: str) -> None:
    project.write(project.cwd, "wev.yml", text)

    assert project.load() == {}


def test_specs_keep_the_order_of_first_appearance(project: Project) -> None:
    project.write(project.home, "wev.yml", f"Z: {{plugin: {{id: {ECHO}}}}}")
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}\nZ: {{plugin: {{x: 1}}}}")

    assert list(project.load()) == ["Z", "A"]


# -- merging -------------------------------------------------------------------------


def test_a_user_file_adds_a_property_to_the_team_entry(project: Project) -> None:
    project.write(
        project.cwd,
        "wev.yml",
        """\
        CODEARTIFACT_AUTH_TOKEN:
          plugin:
            id: wev-awscodeartifact
            domain: my-domain
            repository: my-repo
        """,
    )
    project.write(project.cwd, "wev.user.yml", "CODEARTIFACT_AUTH_TOKEN: {plugin: {profile: work}}")

    spec = project.load()["CODEARTIFACT_AUTH_TOKEN"]

    assert spec.plugin == {
        "id": "wev-awscodeartifact",
        "domain": "my-domain",
        "repository": "my-repo",
        "profile": "work",
    }


def test_nested_mappings_merge_key_by_key(project: Project) -> None:
    project.write(
        project.work, "wev.yml", f"A: {{plugin: {{id: {ECHO}, opts: {{a: 1, b: {{c: 2, d: 3}}}}}}}}"
    )
    project.write(project.cwd, "wev.yml", "A: {plugin: {opts: {b: {d: 4, e: 5}}}}")

    assert project.load()["A"].plugin["opts"] == {"a": 1, "b": {"c": 2, "d": 4, "e": 5}}


@pytest.mark.parametrize(
    ("lower", "higher", "merged"),
    [
        ("[1, 2]", "[3]", [3]),  # lists replace, never concatenate
        ("[1, 2]", "[]", []),
        ("{a: 1}", "plain", "plain"),  # a scalar replaces a mapping
        ("plain", "{a: 1}", {"a": 1}),  # and a mapping a scalar
        ("[1, 2]", "{a: 1}", {"a": 1}),
        ("1", "~", None),
        ("old", "new", "new"),
    ],
)
def test_anything_but_mappings_is_replaced_whole(
    project: Project, lower: str, higher: str, merged: object
) -> None:
    project.write(project.work, "wev.yml", f"A: {{plugin: {{id: {ECHO}, x: {lower}}}}}")
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{x: {higher}}}}}")

    assert project.load()["A"].plugin["x"] == merged


def test_a_higher_file_can_change_the_plugin_id(project: Project) -> None:
    project.write(project.work, "wev.yml", "A: {plugin: {id: one, keep: true}}")
    project.write(project.cwd, "wev.yml", "A: {plugin: {id: two}}")

    assert project.load()["A"].plugin == {"id": "two", "keep": True}


def test_an_id_may_come_from_a_lower_file_only(project: Project) -> None:
    project.write(project.home, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    project.write(project.cwd, "wev.user.yml", "A: {plugin: {value: x}}")

    assert project.load()["A"].plugin == {"id": ECHO, "value": "x"}


def test_merging_does_not_leak_between_working_folders(project: Project) -> None:
    other = project.work / "other"
    other.mkdir()
    project.write(project.work, "wev.yml", f"A: {{plugin: {{id: {ECHO}, opts: {{a: 1}}}}}}")
    project.write(project.cwd, "wev.yml", "A: {plugin: {opts: {b: 2}}}")

    assert project.load()["A"].plugin["opts"] == {"a": 1, "b": 2}
    assert project.load(other)["A"].plugin["opts"] == {"a": 1}


# -- bad input: one clear line naming the file ---------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A: {plugin: [\n  b: c\n", "line 3"),
        ("A:\n\tplugin: {}\n", "line 2"),
        ("A: 'unterminated\n", "line 2"),
        ("a: b: c\n", "line 1"),
        ("A: *undefined\n", "line 1"),
        ("A: {plugin: {id: x}}\n---\nB: {plugin: {id: y}}\n", "line 2"),
    ],
)
def test_a_yaml_syntax_error_names_the_file_and_line(
    project: Project, text: str, expected: str
) -> None:
    path = project.write(project.cwd, "wev.yml", text)

    message = error_of(project)

    assert message.startswith(f"{path}: {expected},")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- A\n- B\n", "the top level must be a mapping of variable names, not a list"),
        ("just text\n", "the top level must be a mapping of variable names, not a string"),
        ("42\n", "not a number"),
        ("123: {plugin: {id: x}}\n", "123: a key must be a variable name or a list of names"),
        ("A=B: {plugin: {id: x}}\n", "a key must be a variable name"),
        ("'': {plugin: {id: x}}\n", "a key must be a variable name"),
        ("~: {plugin: {id: x}}\n", "a key must be a variable name"),
        ("[]: {plugin: {id: x}}\n", "a list key must hold variable names"),
        ("[A, 1]: {plugin: {id: x}}\n", "[A, 1]: a list key must hold variable names"),
        ("[A, A]: {plugin: {id: x}}\n", "[A, A]: a list key must not repeat a name"),
        ("[A, [B]]: {plugin: {id: x}}\n", "this kind of key is not allowed"),
        ("{a: 1}: {plugin: {id: x}}\n", "this kind of key is not allowed"),
        ("A: token-value\n", "A: the value must be a mapping with a 'plugin' block, not a string"),
        ("A:\n", "not an empty value"),
        ("A: [plugin]\n", "not a list"),
        ("A: {plugin: wev-echo}\n", "A: 'plugin' must be a mapping with an 'id'"),
        ("A: {plugin: [id, x]}\n", "'plugin' must be a mapping"),
        ("A: {id: wev-echo}\n", "A: no 'plugin' block"),
        ("A: {plugin: {}}\n", "A: the plugin block has no 'id'"),
        ("A: {plugin: {id: ''}}\n", "the plugin block has no 'id'"),
        ("A: {plugin: {id: 3}}\n", "the plugin block has no 'id'"),
        ("A: !!python/object/apply:os.system [true]\n", "could not determine a constructor"),
    ],
)
def test_a_wrongly_shaped_file_is_a_config_error_naming_it(
    project: Project, text: str, expected: str
) -> None:
    path = project.write(project.cwd, "wev.yml", text)

    message = error_of(project)

    assert message.startswith(f"{path}: ")
    assert expected in message


def test_a_missing_id_names_every_file_that_contributed(project: Project) -> None:
    lower = project.write(project.work, "wev.yml", "A: {plugin: {x: 1}}")
    higher = project.write(project.cwd, "wev.user.yml", "A: {plugin: {y: 2}}")

    assert error_of(project).startswith(f"{lower}, {higher}: A: ")


def test_an_error_in_one_file_is_reported_even_if_another_is_fine(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    bad = project.write(project.home, ".wev.yml", "A: [")

    assert error_of(project).startswith(f"{bad}: ")


def test_a_huge_file_is_refused_without_parsing(project: Project) -> None:
    path = project.cwd / "wev.yml"
    path.write_bytes(b"# " + b"x" * config_files.MAX_FILE_BYTES + b"\n")

    message = error_of(project)

    assert message == f"{path}: larger than 1024 KiB; not a wev config?"


def test_a_file_just_under_the_limit_is_parsed(project: Project) -> None:
    path = project.cwd / "wev.yml"
    entry = f"A: {{plugin: {{id: {ECHO}}}}}\n".encode()
    path.write_bytes(entry + b"#" * (config_files.MAX_FILE_BYTES - len(entry) - 1) + b"\n")

    assert set(project.load()) == {"A"}


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 4,
        b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64,
        b"A: {plugin: {id: x}}\n\xff\xfe\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
)
def test_a_binary_file_is_a_config_error(project: Project, data: bytes) -> None:
    path = project.cwd / "wev.yml"
    path.write_bytes(data)

    message = error_of(project)

    assert message.startswith(f"{path}: ")


def test_utf8_text_with_non_ascii_values_is_fine(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}, value: 'héllo ☃'}}}}")

    assert project.load()["A"].plugin["value"] == "héllo ☃"


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = ['__l0__: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"__l{level}__: &l{level} [{refs}]")
    lines.append(f"A: {{plugin: {{id: {ECHO}, payload: *l{levels}}}}}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_fails_fast(project: Project) -> None:
    path = project.write(project.cwd, "wev.yml", billion_laughs())

    started = time.monotonic()
    message = error_of(project)

    assert time.monotonic() - started < 2
    assert message.startswith(f"{path}: ")
    assert "alias bomb" in message


def test_a_merge_key_bomb_stays_small(project: Project) -> None:
    # Anchors live under meta keys, which wev ignores.
    lines = ["__m0__: &m0 {a: 1, b: 2}"]
    for level in range(1, 10):
        refs = ", ".join([f"*m{level - 1}"] * 10)
        lines.append(f"__m{level}__: &m{level} {{<<: [{refs}]}}")
    lines.append(f"A: {{plugin: {{id: {ECHO}, <<: *m9}}}}")
    project.write(project.cwd, ".wev.yml", "\n".join(lines))

    started = time.monotonic()
    spec = project.load()["A"]

    assert time.monotonic() - started < 2
    assert spec.plugin == {"id": ECHO, "a": 1, "b": 2}


def test_modest_aliases_are_fine(project: Project) -> None:
    project.write(
        project.cwd,
        "wev.yml",
        """\
        A: {plugin: &shared {id: wev-echo, domain: d}}
        B: {plugin: *shared}
        """,
    )

    specs = project.load()

    assert specs["A"].plugin == specs["B"].plugin == {"id": ECHO, "domain": "d"}


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        "[" * 5_000 + "]" * 5_000,
        "{a: " * 20_000,
        "".join(" " * depth + "a:\n" for depth in range(1_200)),
        "A: {plugin: {id: x, deep: " + "- " * 5_000 + "x}}",
    ],
    ids=["open-brackets", "balanced-brackets", "flow-mappings", "block-mappings", "block-lists"],
)
def test_deeply_nested_documents_are_refused(project: Project, text: str) -> None:
    path = project.write(project.cwd, "wev.yml", text)

    started = time.monotonic()
    message = error_of(project)

    assert time.monotonic() - started < 2
    assert message.startswith(f"{path}: ")


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root reads files whatever their mode, so chmod 000 cannot make one unreadable",
)
def test_an_unreadable_file_is_skipped_with_a_warning_on_every_load(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    path = project.write(project.cwd, "wev.user.yml", f"B: {{plugin: {{id: {ECHO}}}}}")
    path.chmod(0)
    warnings: list[str] = []
    try:
        loads = [
            config_files.load(
                str(project.cwd), str(project.home), str(project.cache), warnings.append
            )
            for _ in range(2)
        ]
    finally:
        path.chmod(0o644)

    assert [[spec.names for spec in specs] for specs in loads] == [[("A",)], [("A",)]]
    assert warnings == [f"skipping {path}: cannot read: Permission denied"] * 2
    assert set(project.load()) == {"A", "B"}, "readable again: read again"


def test_a_folder_named_like_a_config_file_is_a_config_error(project: Project) -> None:
    (project.cwd / "wev.yml").mkdir()

    assert error_of(project).startswith(f"{project.cwd / 'wev.yml'}: ")


def test_a_named_pipe_does_not_hang(project: Project) -> None:
    path = project.cwd / "wev.yml"
    os.mkfifo(path)

    started = time.monotonic()
    message = error_of(project)

    assert time.monotonic() - started < 2
    assert message == f"{path}: not a regular file"


def test_a_device_is_not_read(project: Project) -> None:
    (project.cwd / "wev.yml").symlink_to("/dev/zero")

    assert error_of(project) == f"{project.cwd / 'wev.yml'}: not a regular file"


BAD_INPUTS = {
    "syntax": "A: {plugin: [\n",
    "shape": "- a list\n",
    "alias-bomb": billion_laughs(),
    "deep": "[" * 100_000,
    "binary": "\x00\x01\x02",
    "duplicate": "A: {plugin: {id: wev-echo, value: a}}\nA: {plugin: {id: wev-echo, value: b}}\n",
    "tab": "A:\n\tplugin: {id: wev-echo, value: a}\n",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_the_wev_command_shows_one_line_and_exits_78_on_bad_input(
    project: Project, name: str
) -> None:
    path = project.write(project.cwd, "wev.yml", BAD_INPUTS[name])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(project.home),
        "XDG_RUNTIME_DIR": str(project.run),
        "WEV_SOCKET": str(project.run / "wev" / "daemon.sock"),
    }

    result = subprocess.run(
        [sys.executable, "-m", "wev_client", "true"],
        cwd=project.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 78, result.stderr
    assert result.stderr.startswith(f"wev: {path}: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


# -- the parse cache ----------------------------------------------------------------


def test_a_second_load_is_served_from_the_cache_without_yaml(project: Project) -> None:
    project.write(project.home, "wev.yml", f"A: {{plugin: {{id: {ECHO}, from: home}}}}")
    project.write(
        project.cwd, "wev.user.yml", "A: {plugin: {profile: work}}\n[B, C]: {plugin: {id: x}}"
    )
    script = textwrap.dedent(
        f"""\
        import sys
        from wev_client import config_files
        specs = config_files.load(
            {str(project.cwd)!r}, {str(project.home)!r}, {str(project.cache)!r}
        )
        print([(s.names, s.plugin, s.sources) for s in specs])
        print("yaml" in sys.modules, "wev_client.yaml_loader" in sys.modules)
        """
    )

    def run() -> list[str]:
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
        )
        return result.stdout.splitlines()

    first_specs, first_imports = run()
    second_specs, second_imports = run()

    assert first_imports == "True True", "the first load parses"
    assert second_imports == "False False", "an unchanged config is not parsed again"
    assert second_specs == first_specs
    assert "'profile': 'work'" in second_specs


def test_cached_specs_equal_parsed_specs(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"[A, B]: {{plugin: {{id: {ECHO}, n: {{x: [1, 2.5]}}}}}}")

    parsed = project.load()
    cached = project.load()

    assert project.cache.exists()
    assert cached == parsed


def test_an_edited_file_is_read_again(project: Project) -> None:
    path = project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}, v: one}}}}")
    assert project.load()["A"].plugin["v"] == "one"

    # The same size, at once: only the bytes tell the two versions apart.
    path.write_text(f"A: {{plugin: {{id: {ECHO}, v: two}}}}")

    assert project.load()["A"].plugin["v"] == "two"


def test_an_edit_is_seen_even_when_timestamps_do_not_move(project: Project) -> None:
    # On coarse-clock filesystems two writes can share an mtime; an editor or
    # `git checkout` may also set the old one back. Only the bytes count.
    path = project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}, v: one}}}}")
    before = path.stat()
    assert project.load()["A"].plugin["v"] == "one"
    with open(path, "r+") as file:  # rewrite in place: same inode, same size
        file.write(f"A: {{plugin: {{id: {ECHO}, v: two}}}}")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert project.load()["A"].plugin["v"] == "two"


def test_a_file_edited_seconds_ago_is_cached_at_once(project: Project) -> None:
    """No racy window: the bytes are compared, so a fresh file may be cached."""
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")

    project.load()

    _, entries = read_cache(project.cache)
    assert len(entries) == 1


def test_an_unchanged_configuration_is_not_parsed_again(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    calls: list[list[tuple[str, bytes]]] = []

    def parse(files: list[tuple[str, bytes]]) -> None:
        calls.append(files)
        return None  # as when no daemon answers: parsed in this process

    for _ in range(3):
        specs = config_files.load(
            str(project.cwd), str(project.home), str(project.cache), None, parse
        )
        assert [spec.names for spec in specs] == [("A",)]

    assert len(calls) == 1
    assert calls[0] == [(str(project.cwd / "wev.yml"), f"A: {{plugin: {{id: {ECHO}}}}}".encode())]


def test_what_the_parser_returns_is_used_and_cached(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    other = (VariableSpec(("B",), {"id": ECHO}, ("elsewhere",)),)

    def parse(files: list[tuple[str, bytes]]) -> tuple[VariableSpec, ...]:
        return other

    first = config_files.load(str(project.cwd), str(project.home), str(project.cache), None, parse)

    assert first == other
    assert set(project.load()) == {"B"}, "served from the cache: nothing changed"


def test_a_large_configuration_is_not_cached(project: Project) -> None:
    filler = "# " + "x" * 1000 + "\n"
    project.write(project.cwd, "wev.yml", filler * 200 + f"A: {{plugin: {{id: {ECHO}}}}}")

    assert set(project.load()) == {"A"}

    assert not project.cache.exists() or read_cache(project.cache)[1] == {}


def test_a_new_file_is_seen(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    assert set(project.load()) == {"A"}

    project.write(project.work, ".wev.yml", f"B: {{plugin: {{id: {ECHO}}}}}")

    assert set(project.load()) == {"A", "B"}


def test_a_removed_file_is_forgotten(project: Project) -> None:
    path = project.write(project.cwd, "wev.user.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    assert set(project.load()) == {"A"}

    path.unlink()

    assert project.load() == {}


def test_a_file_that_breaks_after_caching_is_reported(project: Project) -> None:
    path = project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    project.load()

    path.write_text("A: [")

    assert error_of(project).startswith(f"{path}: ")


def test_each_working_folder_has_its_own_cache_entry(project: Project) -> None:
    other = project.work / "other"
    other.mkdir()
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    project.write(other, "wev.yml", f"B: {{plugin: {{id: {ECHO}}}}}")

    for _ in range(2):
        assert set(project.load()) == {"A"}
        assert set(project.load(other)) == {"B"}
        assert set(project.load(other, home=None)) == {"B"}


def test_a_missing_cache_folder_is_not_made_for_the_cache(project: Project) -> None:
    # It is the daemon's folder: made, with checks on the folders above, where one starts.
    project.cache = project.run / "wev" / "config-cache"
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")

    assert set(project.load()) == {"A"}
    assert list(project.run.iterdir()) == []

    (project.run / "wev").mkdir(mode=0o700)
    project.load()
    assert project.cache.stat().st_mode & 0o777 == 0o600


def test_no_cache_path_means_no_cache(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")

    specs = config_files.load(str(project.cwd), str(project.home), None)

    assert [spec.names for spec in specs] == [("A",)]
    assert list(project.run.iterdir()) == []


def read_cache(cache: Path) -> tuple[int, config_files.Cache]:
    version, entries = marshal.loads(cache.read_bytes())  # noqa: S302 - the test's own file
    assert isinstance(version, int) and isinstance(entries, dict)
    return version, entries


def poison(cache: Path) -> None:
    """Rewrite a real cache file so that every entry claims a variable named POISONED."""
    version, entries = read_cache(cache)
    for key, (sig, specs) in entries.items():
        entries[key] = (sig, [(("POISONED",), specs[0][1], specs[0][2])])
    cache.write_bytes(marshal.dumps((version, entries)))


def test_a_cache_folder_open_to_others_is_neither_written_nor_read(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    project.load()
    poison(project.cache)
    assert set(project.load()) == {"POISONED"}, "the cache is used while the folder is private"

    project.run.chmod(0o755)  # anyone could have planted that cache file
    assert set(project.load()) == {"A"}

    project.cache.unlink()
    project.load()
    assert not project.cache.exists(), "nothing is written to a folder others can enter"


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o701, 0o1777])
def test_no_cache_is_written_to_a_shared_folder(project: Project, mode: int) -> None:
    project.run.chmod(mode)
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")

    assert set(project.load()) == {"A"}

    assert not project.cache.exists()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away needs root"
)
def test_a_cache_file_owned_by_someone_else_is_ignored(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    project.load()
    poison(project.cache)
    os.chown(project.cache, 12345, 12345)

    assert set(project.load()) == {"A"}


def test_a_symlinked_cache_file_is_not_followed(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    project.load()
    poison(project.cache)
    elsewhere = project.root / "planted"
    project.cache.rename(elsewhere)
    project.cache.symlink_to(elsewhere)

    assert set(project.load()) == {"A"}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00garbage\xff" * 10,
        marshal.dumps("not a tuple"),
        marshal.dumps((config_files._CACHE_FORMAT, "not a dict")),
        marshal.dumps((config_files._CACHE_FORMAT - 1, {})),
        marshal.dumps((config_files._CACHE_FORMAT, {"key": 5})),
        marshal.dumps((config_files._CACHE_FORMAT, {("a", "b"): (1, 2, 3)})),
        marshal.dumps((config_files._CACHE_FORMAT, {"x": ((), {}, [5])})),
        marshal.dumps((config_files._CACHE_FORMAT, {"x": ((), {7: b""}, [])})),
    ],
    ids=range(9),
)
def test_a_corrupt_cache_file_is_ignored_and_replaced(project: Project, data: bytes) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    project.cache.write_bytes(data)

    assert set(project.load()) == {"A"}
    assert set(project.load()) == {"A"}
    assert project.cache.read_bytes() != data


def test_a_truncated_cache_file_is_ignored(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}, x: {list(range(50))}}}}}")
    project.load()
    data = project.cache.read_bytes()

    for size in range(0, len(data), max(1, len(data) // 40)):
        project.cache.write_bytes(data[:size])
        assert set(project.load()) == {"A"}


def test_a_corrupt_entry_with_the_right_signature_is_ignored(project: Project) -> None:
    project.write(project.cwd, "wev.yml", f"A: {{plugin: {{id: {ECHO}}}}}")
    project.load()
    version, entries = read_cache(project.cache)
    for key, (sig, _) in entries.items():
        entries[key] = (sig, [("not", "a", "spec", "shape")])  # type: ignore[list-item]
    project.cache.write_bytes(marshal.dumps((version, entries)))

    assert set(project.load()) == {"A"}


def test_the_cache_keeps_a_bounded_number_of_working_folders(project: Project) -> None:
    for index in range(config_files._CACHE_ENTRIES + 10):
        folder = project.work / f"p{index}"
        folder.mkdir()
        project.load(folder)

    _, entries = read_cache(project.cache)

    assert len(entries) == config_files._CACHE_ENTRIES
