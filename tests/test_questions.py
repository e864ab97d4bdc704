"""Questions with no terminal anywhere: ``mfa_process``, an askpass program and ``wev --answer``.

Every caller here runs in a session of its own with stdin from /dev/null, as an IDE, an SDK's
``credential_process`` or a tool's keyring lookup runs it: no ``/dev/tty`` to ask on. botocore
runs the real ``wev --aws-credentials`` as its profile's ``credential_process``; the fake STS
checks the MFA code and counts its calls. Only ``wev --answer`` runs on a pseudo-terminal,
where a person would type.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WEV, Daemon, User, free_port
from ecr_harness import HELPER, REGISTRY
from fakes.codeartifact import FakeCodeArtifact
from fakes.ecr import FakeEcr
from fakes.pypi_index import FakePyPIIndex
from fakes.sts import DEVICE, FakeSts
from fakes.wheels import build_wheel
from mfa_harness import (
    CODE,
    NAMES,
    WHO_AM_I,
    elsewhere,
    finish,
    mfa_role,
    no_terminal,
)
from terminal import Pty
from tools import CODEARTIFACT_URL, REPOSITORY_WEV_YML, start_keyring_lookup

from wev_client import output

pytest_plugins = ("mfa_fixtures",)
TIMEOUT = 60.0
QUESTION_TEXT = f"MFA code for {DEVICE}: "


def sdk(user: User, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """An SDK call (botocore) whose profile's credential_process is wev."""
    return no_terminal(user, (sys.executable, "-c", WHO_AM_I), env)


def askpass(user: User, body: str = "") -> Path:
    """A WEV_ASKPASS program: logs each argument it gets and prints the next word of
    ``$ANSWERS`` (codes stay in the environment, never in a file)."""
    log, count = user.root / "askpass.log", user.root / "askpass.count"
    script = user.write(
        "bin/askpass",
        "#!/bin/sh\n"
        f"printf '%s\\n--\\n' \"$1\" >> {log}\n"
        f"{body}"
        f"n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}\n"
        'set -- $ANSWERS; shift "$n" 2>/dev/null && [ -n "$1" ] && echo "$1"\n'
        "exit 0\n",
    )
    script.chmod(0o755)
    return script


def answering(program: Path, *codes: str) -> dict[str, str]:
    return {"WEV_ASKPASS": str(program), "ANSWERS": " ".join(codes)}


def asked(user: User) -> list[str]:
    log = user.root / "askpass.log"
    return log.read_text().split("\n--\n")[:-1] if log.exists() else []


def wait_for_question(user: User, limit: float = 20.0) -> str:
    """``wev --status`` once it lists a question; never an answer in it."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = user.wev("--status").stdout
        if "question:" in status:
            return status
        time.sleep(0.1)
    raise AssertionError(f"no question listed: {status}")


def wev_answer(user: User, ptys: list[Pty], text: str = QUESTION_TEXT) -> Pty:
    """``wev --answer`` in a terminal, once it asks ``text`` (kept in ``ptys`` to close)."""
    answer = Pty((WEV, "--answer"), user.project, {**user.env, "TERM": "xterm"})
    ptys.append(answer)
    answer.expect(f"wev: {text}".encode())
    return answer


# -- mfa_process ---------------------------------------------------------------------------


def test_the_aws_profiles_mfa_process_answers_an_sdk_in_its_context(
    sdk_user: User, daemon: Daemon, sts: FakeSts
) -> None:
    config = sdk_user.home / ".aws" / "config"
    # aws-vault's key, on the profile the entry uses; run with the caller's environment.
    config.write_text(
        config.read_text().replace(
            "[default]\n", '[default]\nmfa_process = printf %s "$CODE_FROM_CALLER"\n', 1
        )
    )

    code, out, err = finish(sdk(sdk_user, {"CODE_FROM_CALLER": CODE}))

    assert code == 0, err
    [session] = sts.sessions
    assert f"key={session.access_key_id}" in out
    assert [call.token_code for call in sts.calls_of("GetSessionToken")] == [CODE]


def test_the_entrys_mfa_process_runs_in_the_callers_folder(
    sdk_user: User, daemon: Daemon, sts: FakeSts
) -> None:
    sdk_user.write(
        "home/.wev.user.yml",
        f"{NAMES}:\n  plugin:\n"
        f'    mfa_process: pwd > {sdk_user.root}/where; printf %s "$CODE_FROM_CALLER"\n',
    )

    code, _, err = finish(sdk(sdk_user, {"CODE_FROM_CALLER": CODE}))

    assert code == 0, err
    assert (sdk_user.root / "where").read_text().strip() == str(elsewhere(sdk_user))
    assert len(sts.calls_of("GetSessionToken")) == 1


# -- askpass -------------------------------------------------------------------------------


def test_askpass_gets_the_question_as_its_argument(
    sdk_user: User, daemon: Daemon, sts: FakeSts
) -> None:
    code, _, err = finish(sdk(sdk_user, answering(askpass(sdk_user), CODE)))

    assert code == 0, err
    assert asked(sdk_user) == [QUESTION_TEXT]
    assert [call.token_code for call in sts.calls_of("GetSessionToken")] == [CODE]


def test_without_a_daemon_a_slow_askpass_is_waited_for_not_polled(
    sdk_user: User, sts: FakeSts
) -> None:
    # The person takes a few seconds to type the code in the dialog.
    program = askpass(sdk_user, body="sleep 5\n")
    env = {**answering(program, CODE), "WEV_NO_DAEMON": "1"}
    call = no_terminal(sdk_user, (WEV, "--aws-credentials", "AWS_ACCESS_KEY_ID"), env)
    try:
        _, status, usage = os.wait4(call.pid, 0)
    finally:
        if call.poll() is None:
            call.kill()
    assert call.stdout is not None and call.stderr is not None
    out, err = call.stdout.read(), call.stderr.read()

    assert os.waitstatus_to_exitcode(status) == 0, err
    assert json.loads(out)["SessionToken"] in sts.secrets()
    # Python with botocore costs about a second of CPU; polling for 5 s costs up to 5.
    assert usage.ru_utime + usage.ru_stime < 2.5, "it polled while the dialog was open"


def test_a_wrong_code_is_asked_again_once_with_awss_words(
    sdk_user: User, daemon: Daemon, sts: FakeSts
) -> None:
    code, _, err = finish(sdk(sdk_user, answering(askpass(sdk_user), "000000", CODE)))

    assert code == 0, err
    first, second = asked(sdk_user)
    assert first == QUESTION_TEXT
    assert second.startswith("refused: MFA session for") and "AccessDenied" in second
    assert second.endswith("\n" + QUESTION_TEXT)
    assert [call.token_code for call in sts.calls_of("GetSessionToken")] == ["000000", CODE]


def test_two_wrong_codes_fail_in_one_line(sdk_user: User, daemon: Daemon, sts: FakeSts) -> None:
    program = askpass(sdk_user)
    direct = no_terminal(
        sdk_user,
        (WEV, "--aws-credentials", "AWS_ACCESS_KEY_ID"),
        answering(program, "000000", "111111", CODE),
    )
    code, out, err = finish(direct)

    assert code == 69 and out == ""
    last = err.splitlines()[-1]
    assert last.startswith("wev: --aws-credentials AWS_ACCESS_KEY_ID") and "AccessDenied" in last
    assert len(asked(sdk_user)) == 2
    assert [c.token_code for c in sts.calls_of("GetSessionToken")] == ["000000", "111111"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("echo 'no display here' >&2; exit 3\n", "exited with status 3: no display here"),
        ("sleep 600\n", "gave no answer within 3 s"),
        ("exit 0\n", "printed no answer"),
    ],
    ids=["fails", "hangs", "silent"],
)
@pytest.mark.timing  # within the wait bound (3 s), with a few seconds to spare
def test_an_askpass_that_fails_or_hangs_is_one_line_within_the_bound(
    sdk_user: User, sts: FakeSts, body: str, expected: str
) -> None:
    program = askpass(sdk_user, body=body)
    daemon = Daemon(sdk_user, args=("--question-wait", "3"))
    try:
        started = time.monotonic()
        code, out, err = finish(
            no_terminal(
                sdk_user,
                (WEV, "--aws-credentials", "AWS_ACCESS_KEY_ID"),
                answering(program, CODE),
            )
        )
        took = time.monotonic() - started
    finally:
        daemon.stop()

    assert code == 69 and out == ""
    last = err.splitlines()[-1]
    assert last.startswith(
        f"wev: --aws-credentials AWS_ACCESS_KEY_ID (AWS profile viawev): {NAMES}"
    )
    assert f"askpass askpass {expected}" in last
    assert took < 3 + 5, "no hang past the wait bound"
    assert sts.calls_of("GetSessionToken") == []


@pytest.mark.parametrize(
    ("dialog", "display", "expected"),
    [
        (
            "zenity",
            {"DISPLAY": ":99"},
            ["--entry", "--hide-text", "--title=wev", f"--text={QUESTION_TEXT}"],
        ),
        (
            "kdialog",
            {"WAYLAND_DISPLAY": "wayland-0"},
            ["--title", "wev", "--password", QUESTION_TEXT],
        ),
    ],
)
def test_the_desktops_dialog_asks_where_there_is_a_display(
    sdk_user: User,
    daemon: Daemon,
    sts: FakeSts,
    dialog: str,
    display: dict[str, str],
    expected: list[str],
) -> None:
    """A stand-in for the dialog program on the caller's PATH records its arguments, which
    are the ones the real program takes for a hidden entry with the question as its text."""
    record = sdk_user.root / f"{dialog}.args"
    program = sdk_user.write(
        f"dialogs/{dialog}",
        f'#!/bin/sh\nfor arg in "$@"; do printf \'%s\\n\' "$arg" >> {record}; done\n'
        'printf "%s\\n" "$CODE_FROM_CALLER"\n',
    )
    program.chmod(0o755)
    # Only the stand-in: no real zenity found before the kdialog one.
    path = f"{program.parent}:{Path(WEV).parent}"

    code, out, err = finish(
        no_terminal(
            sdk_user,
            (WEV, "--aws-credentials", "AWS_ACCESS_KEY_ID"),
            {**display, "PATH": path, "CODE_FROM_CALLER": CODE},
        )
    )

    assert code == 0, err
    assert json.loads(out)["SessionToken"]
    assert record.read_text().splitlines() == expected
    assert [call.token_code for call in sts.calls_of("GetSessionToken")] == [CODE]


def test_a_display_without_a_dialog_program_leaves_it_to_wev_answer(
    sdk_user: User, sts: FakeSts
) -> None:
    """DISPLAY set but no zenity or kdialog on the caller's PATH: nothing pops up, the
    question waits for ``wev --answer`` (and fails at the bound)."""
    daemon = Daemon(sdk_user, args=("--question-wait", "1"))
    try:
        code, _, err = finish(
            no_terminal(
                sdk_user,
                (WEV, "--aws-credentials", "AWS_ACCESS_KEY_ID"),
                {"DISPLAY": ":99", "PATH": str(Path(WEV).parent) + ":/nonexistent"},
            )
        )
    finally:
        daemon.stop()
    assert code == 69
    assert "run `wev --answer` in a terminal" in err
    assert "nobody answered within 1 s" in err.splitlines()[-1]


def test_a_display_that_cannot_be_opened_leaves_it_to_wev_answer(
    sdk_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    """DISPLAY left over from a closed session (tmux, ssh -X): the dialog cannot open it,
    which is no Cancel from the user. The question waits for ``wev --answer``."""
    program = sdk_user.write(
        "dialogs/zenity",
        "#!/bin/sh\necho '(zenity:1): Gtk-WARNING **: cannot open display: :99' >&2\nexit 1\n",
    )
    program.chmod(0o755)
    path = f"{program.parent}:{Path(WEV).parent}"
    call = no_terminal(
        sdk_user, (WEV, "--aws-credentials", "AWS_ACCESS_KEY_ID"), {"DISPLAY": ":99", "PATH": path}
    )
    try:
        status = wait_for_question(sdk_user)
        assert "asked: by wev --answer" in status, status
        answer_on_a_terminal(sdk_user, ptys, QUESTION_TEXT)
        code, out, err = finish(call)
    finally:
        if call.poll() is None:
            call.kill()

    assert code == 0, err
    assert json.loads(out)["SessionToken"] in sts.secrets()
    assert [c.token_code for c in sts.calls_of("GetSessionToken")] == [CODE]


# -- wev --answer ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "waiting"),
    [
        # Open, and no channel asks it yet: the daemon says "", wev --answer answers it.
        ({"channel": ""}, "for an answer from wev --answer (see questions)"),
        ({"channel": "askpass zenity"}, "for an answer from askpass zenity (see questions)"),
        ({}, "a terminal is asking the user for input"),  # a daemon that does not say
    ],
)
def test_the_entry_and_its_question_name_the_same_channel(
    question: dict[str, object], waiting: str
) -> None:
    names = ["AWS_ACCESS_KEY_ID"]
    asked = {"names": names, "text": "MFA code:", "waiting_seconds": 1, "ends_in_seconds": 119}
    body = {
        "entries": [{"names": names, "plugin": "wev-awsmfa", "waiting_for_input": True}],
        "questions": [{**asked, **question}],
    }

    status = output.status(body)

    assert f"    waiting: {waiting}\n" in status, status
    channel = question.get("channel") or "wev --answer"
    assert f"    asked: by {channel}, for 1s, 1m59s left\n" in status, status


def test_ten_sdk_calls_wait_for_one_answer_given_with_wev_answer(
    sdk_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    calls = [sdk(sdk_user) for _ in range(10)]
    try:
        status = wait_for_question(sdk_user)
        assert f"MFA code for {DEVICE}" in status and "wev --answer" in status
        # No terminal asks it: the entry says what it waits for.
        assert "waiting: for an answer from wev --answer" in status, status
        assert "a terminal is asking" not in status, status
        answer = wev_answer(sdk_user, ptys)
        answer.type(CODE + "\n")
        assert answer.wait() == 0, bytes(answer.output)
        assert b"answered" in answer.output and CODE.encode() not in answer.output
        # The lines the README shows (the question block, then wev --answer's).
        names = "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN"
        assert re.search(
            rf"^questions: 1\n  {names}: question: MFA code for {DEVICE}\n"
            r"    asked: by wev --answer, for \d+s, \dm\d\ds left\n    answer it: wev --answer$",
            status,
            re.MULTILINE,
        ), status
        assert bytes(answer.output).decode().replace("\r", "").splitlines()[-1] == (
            f"wev: {names}: answered"
        )
        outcomes = [finish(call) for call in calls]
    finally:
        for call in calls:
            if call.poll() is None:
                call.kill()

    [session] = sts.sessions
    for code, out, err in outcomes:
        assert code == 0, err
        assert f"key={session.access_key_id}" in out
    assert [call.token_code for call in sts.calls_of("GetSessionToken")] == [CODE]
    assert CODE not in daemon.log
    assert "question:" not in sdk_user.wev("--status").stdout


def test_wev_answer_asks_again_once_after_a_wrong_code(
    sdk_user: User, daemon: Daemon, sts: FakeSts, ptys: list[Pty]
) -> None:
    call = sdk(sdk_user)
    try:
        wait_for_question(sdk_user)
        answer = wev_answer(sdk_user, ptys)
        answer.type("000000\n")
        answer.expect(b"AccessDenied")
        deadline = time.monotonic() + TIMEOUT
        while answer.output.count(QUESTION_TEXT.encode()) < 2:  # until asked again
            assert time.monotonic() < deadline, bytes(answer.output)
            answer.settle(0.1)
        answer.type(CODE + "\n")
        assert answer.wait() == 0, bytes(answer.output)
        code, _, err = finish(call)
    finally:
        if call.poll() is None:
            call.kill()

    shown = bytes(answer.output).decode()
    assert shown.count(QUESTION_TEXT) == 2, shown
    assert shown.count("AccessDenied") == 1, "the refusal is told once, as it is asked again"
    assert shown.rstrip().endswith("answered")
    assert code == 0, err
    assert [c.token_code for c in sts.calls_of("GetSessionToken")] == ["000000", CODE]


def test_an_answer_typed_after_the_wait_bound_says_the_question_ended(
    sdk_user: User, sts: FakeSts, ptys: list[Pty]
) -> None:
    daemon = Daemon(sdk_user, args=("--question-wait", "3"))
    call = sdk(sdk_user)
    try:
        wait_for_question(sdk_user)
        answer = wev_answer(sdk_user, ptys)
        code, _, err = finish(call)  # the wait bound passes: the call fails
        answer.type(CODE + "\n")
        status = answer.wait()
    finally:
        if call.poll() is None:
            call.kill()
        daemon.stop()

    assert code != 0 and "nobody answered within 3 s" in err
    shown = bytes(answer.output).decode()
    assert status == 69, shown
    assert "the question ended unanswered before this answer" in shown
    assert "answered elsewhere" not in shown
    assert sts.calls_of("GetSessionToken") == []


def test_wev_answer_with_no_terminal_says_where_to_run_it(
    sdk_user: User, daemon: Daemon, sts: FakeSts
) -> None:
    call = sdk(sdk_user)
    try:
        wait_for_question(sdk_user)
        result = sdk_user.wev("--answer")  # from a script, say: no terminal to type on
    finally:
        call.kill()
        call.communicate()

    assert result.returncode == 69, result.stderr
    [line] = result.stderr.splitlines()
    assert "needs input" in line and line.endswith("(run `wev --answer` in a terminal)"), line


def test_wev_answer_with_nothing_to_answer(sdk_user: User, daemon: Daemon) -> None:
    result = sdk_user.wev("--answer")
    assert (result.returncode, result.stdout) == (0, "wev: no question is waiting for an answer\n")


# -- the keyring backend and the proxy --------------------------------------------------------

KEYRING_LOOKUP = (
    "from wev_client.keyring_backend import WevKeyring\n"
    "import hashlib, sys\n"
    "token = WevKeyring().get_password(sys.argv[1], 'aws')\n"
    "print('token' if token else 'none', hashlib.sha256((token or '').encode()).hexdigest())\n"
)


@pytest.fixture
def role_user(user: User) -> Iterator[tuple[User, FakeSts, FakeCodeArtifact]]:
    """A user whose CodeArtifact profile assumes a role with MFA (``mfa_serial``)."""
    build_wheel(user.root / "index", "corp-lib", "1.2.3")
    with (
        mfa_role(user, CODE) as (fake_sts, codeartifact),
        FakePyPIIndex(user.root / "index", codeartifact) as index,
    ):
        codeartifact.repository_base_url = index.url
        user.env["AWS_PROFILE"] = "dev"
        yield user, fake_sts, codeartifact


ROLE_QUESTION = f"Enter MFA code for {DEVICE}: "
NEXT_CODE = "901442"
CHANNELS = ["mfa_process", "askpass", "wev --answer"]


def answered_by(user: User, channel: str) -> dict[str, str]:
    """What the caller's context needs for ``channel`` to answer the ``dev`` profile's code
    (``wev --answer``: nothing, the test answers on a terminal with ``answer_on_a_terminal``)."""
    if channel == "mfa_process":
        role_mfa_process(user)
        return {"CODE_FROM_CALLER": CODE}
    if channel == "askpass":
        return answering(askpass(user), CODE, CODE)
    return {}


def role_mfa_process(user: User) -> None:
    """aws-vault's ``mfa_process`` on the role profile, printing the caller's code."""
    config = user.home / ".aws" / "config"
    config.write_text(
        config.read_text().replace(
            f"mfa_serial = {DEVICE}\n",
            f'mfa_serial = {DEVICE}\nmfa_process = printf %s "$CODE_FROM_CALLER"\n',
        )
    )


def answer_on_a_terminal(user: User, ptys: list[Pty], text: str = ROLE_QUESTION) -> None:
    """A person runs ``wev --answer`` in a terminal once a question waits, and types the code."""
    wait_for_question(user)
    answer = wev_answer(user, ptys, text)
    answer.type(CODE + "\n")
    assert answer.wait() == 0, bytes(answer.output)


#: A CodeArtifact host's URL names its repository; a stand-in's is matched against the
#: entries' repository endpoints first, a lookup that needs the same answer.
KEYRING_CASES = [(channel, "codeartifact host") for channel in CHANNELS] + [
    ("askpass", "stand-in"),
    ("mfa_process", "stand-in"),
]


@pytest.mark.parametrize(("channel", "where"), KEYRING_CASES)
def test_the_keyring_backend_gets_its_token_with_no_terminal(
    role_user: tuple[User, FakeSts, FakeCodeArtifact], ptys: list[Pty], channel: str, where: str
) -> None:
    user, fake_sts, codeartifact = role_user
    env = answered_by(user, channel)
    url = CODEARTIFACT_URL
    if where == "stand-in":
        user.write("work/project/wev.yml", REPOSITORY_WEV_YML)
        url = f"{codeartifact.repository_base_url}/pypi/shared/simple/"
    daemon = Daemon(user)
    try:
        lookup = start_keyring_lookup(user, KEYRING_LOOKUP, url, env)
        if channel == "wev --answer":
            answer_on_a_terminal(user, ptys)
        status, out, err = finish(lookup)
    finally:
        daemon.stop()

    assert status == 0, err
    [token] = codeartifact.issued
    assert out.split() == ["token", hashlib.sha256(token.encode()).hexdigest()]
    if channel == "askpass":
        assert asked(user) == [ROLE_QUESTION]
    # A stand-in's URL: its endpoint (one call with the role's login), then its token.
    assume = fake_sts.calls_of("AssumeRole")
    assert [call.token_code for call in assume] == [CODE] * (2 if where == "stand-in" else 1)


def test_a_repository_behind_an_mfa_role_takes_one_answer_from_askpass(
    role_user: tuple[User, FakeSts, FakeCodeArtifact],
) -> None:
    """The token and the repository's endpoint are two calls with the role's login: the
    code askpass gave serves both, as a terminal's would."""
    user, fake_sts, codeartifact = role_user
    user.write("work/project/wev.yml", REPOSITORY_WEV_YML)
    program = askpass(user)
    daemon = Daemon(user, args=("--question-wait", "10"))
    try:
        result = subprocess.run(
            (WEV, "sh", "-c", 'printf %s "$PIP_INDEX_URL"'),
            cwd=user.project,
            env={**user.env, **answering(program, CODE)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            start_new_session=True,
        )
    finally:
        daemon.stop()

    assert result.returncode == 0, result.stderr
    [token] = codeartifact.issued
    assert f"://aws:{token}@" in result.stdout
    assert asked(user) == [ROLE_QUESTION]
    assert {call.token_code for call in fake_sts.calls_of("AssumeRole")} == {CODE}


def test_the_next_fetch_asks_afresh_rather_than_reuse_the_last_answer(
    role_user: tuple[User, FakeSts, FakeCodeArtifact],
) -> None:
    """Right after a sign-in with a code, the user drops the token (``wev --forget``): the
    next fetch asks for a new code, as the first did, instead of sending the used one."""
    user, fake_sts, codeartifact = role_user
    user.write("work/project/wev.yml", REPOSITORY_WEV_YML)
    env = answering(askpass(user), CODE, NEXT_CODE)
    daemon = Daemon(user, args=("--question-wait", "30"))
    try:
        first = user.wev("sh", "-c", 'printf %s "$PIP_INDEX_URL"', env=env)
        assert first.returncode == 0, first.stderr
        assert user.wev("--forget").returncode == 0
        fake_sts.code = NEXT_CODE  # the old code is no longer valid
        second = user.wev("sh", "-c", 'printf %s "$PIP_INDEX_URL"', env=env)
    finally:
        daemon.stop()

    assert second.returncode == 0, second.stderr
    assert asked(user) == [ROLE_QUESTION, ROLE_QUESTION]
    assert [call.token_code for call in fake_sts.calls_of("AssumeRole")][-1] == NEXT_CODE
    assert len(codeartifact.issued) == 2


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_proxy_waits_for_the_answer_when_the_token_must_be_renewed(
    role_user: tuple[User, FakeSts, FakeCodeArtifact], ptys: list[Pty], channel: str
) -> None:
    user, fake_sts, codeartifact = role_user
    user.write(
        "work/project/wev.yml",
        "PIP_INDEX_URL:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
        "    repository: shared\n    format: pypi\n    values: [index_url]\n    proxy: true\n",
    )
    env = answered_by(user, channel)  # the context of the call that registers the route
    codeartifact.set_lifetime(8)  # fresh for about 6 s: the proxy's request renews it
    port = free_port()
    daemon = Daemon(user, env={"WEV_PROXY_PORT": str(port)})
    try:
        # A terminal registers the route (and answers its first question there).
        first = Pty(
            (WEV, "sh", "-c", 'printf "[%s]" "$PIP_INDEX_URL"'),
            user.project,
            {**user.env, **env, "TERM": "xterm"},
        )
        ptys.append(first)
        if channel != "mfa_process":  # which answers a terminal's question too
            first.expect(ROLE_QUESTION.encode())
            first.type(CODE + "\n")
        assert first.wait() == 0, bytes(first.output)
        index = bytes(first.output).decode().rpartition("[")[2].partition("]")[0]
        assert index.startswith(f"http://127.0.0.1:{port}/")
        time.sleep(8)
        get = f"import urllib.request as u; print(u.urlopen({index + 'corp-lib/'!r}).status)"
        fetch = subprocess.Popen(
            (sys.executable, "-c", get),
            env={"PATH": os.environ["PATH"], "NO_PROXY": "*"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if channel == "wev --answer":
            answer_on_a_terminal(user, ptys)
        out, err = fetch.communicate(timeout=TIMEOUT)
    finally:
        daemon.stop()

    assert (fetch.returncode, out) == (0, "200\n"), err
    assert {call.token_code for call in fake_sts.calls_of("AssumeRole")} == {CODE}
    assert len(codeartifact.issued) == 2  # the renewed token came with the answer
    if channel == "askpass":
        assert asked(user) == [ROLE_QUESTION]  # the proxy's: the terminal asked the first


def test_the_docker_helper_gets_its_password_behind_an_mfa_role_from_mfa_process(
    user: User,
) -> None:
    """An ECR entry whose profile assumes a role with ``mfa_serial``: Docker runs the helper
    with no terminal, and the code comes from that profile's ``mfa_process``."""
    with mfa_role(user, CODE) as (fake_sts, _), FakeEcr(fake_sts.issued) as ecr:
        role_mfa_process(user)
        user.write(
            "home/.wev.yml",
            f"ECR_PASSWORD:\n  plugin:\n    id: wev-awsecr\n    registry: {REGISTRY}\n"
            "    profile: dev\n",
        )
        daemon = Daemon(user, env={"AWS_ENDPOINT_URL_ECR": ecr.url}, args=("--question-wait", "5"))
        try:
            get = subprocess.run(
                (HELPER, "get"),
                input=REGISTRY,
                cwd=elsewhere(user),
                env={**user.env, "AWS_ENDPOINT_URL_ECR": ecr.url, "CODE_FROM_CALLER": CODE},
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                start_new_session=True,
            )
        finally:
            daemon.stop()

        assert get.returncode == 0, get.stdout + get.stderr
        assert ecr.is_valid_password(REGISTRY, json.loads(get.stdout)["Secret"])
        [assume] = fake_sts.calls_of("AssumeRole")
        assert assume.token_code == CODE


@pytest.mark.timing  # at once, not after the wait bound
def test_in_ci_a_question_for_a_person_fails_at_once_in_one_line(
    sdk_user: User, daemon: Daemon, sts: FakeSts
) -> None:
    # CI=true, no terminal, no mfa_process nor askpass: nobody would answer `wev --answer`.
    started = time.monotonic()
    code, out, err = finish(no_terminal(sdk_user, (WEV, "true"), {"CI": "true"}))

    assert time.monotonic() - started < 10
    assert code == 69 and out == "", err
    [line] = err.splitlines()
    assert line.startswith("wev: ") and "no terminal" in line and "MFA code" in line
    assert line.endswith("(give the entry an mfa_process (or WEV_ASKPASS) that prints it)")
    assert not sts.calls_of("GetSessionToken")
