"""Tokens and keys never leave memory: not to disk, logs (DEBUG included),
``--explain``, ``--status`` or the daemon's own environment.

Every test's temporary root (HOME, runtime, state and log folders) is also
scanned for issued tokens when the test ends, by the ``user`` fixture.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import ENV_KEY, ENV_SECRET, User
from fakes.codeartifact import FakeCodeArtifact

CONFIG = "CODEARTIFACT_AUTH_TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n"
PRINT_TOKEN = ("sh", "-c", 'printf %s "$CODEARTIFACT_AUTH_TOKEN"')


def test_a_day_of_use_leaves_no_secret_anywhere(user: User, fake: FakeCodeArtifact) -> None:
    user.write("work/project/wev.yml", CONFIG)
    keys = {"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET}
    debug = ("--log-level", "DEBUG")
    fake.set_lifetime(6)
    outputs: list[str] = []

    def record(*args: str, env: dict[str, str] | None = None) -> str:
        result = user.wev(*args, env=env)
        outputs.extend([result.stderr, *([] if args[-1] == PRINT_TOKEN[-1] else [result.stdout])])
        return result.stdout

    tokens = {record(*debug, *PRINT_TOKEN, env=keys)}  # auto-starts the daemon
    tokens.add(record(*debug, *PRINT_TOKEN, env={"AWS_PROFILE": "work"}))
    record("--explain")
    record("--status")
    record("--status", "--json")
    assert fake.wait_for_call_count(3, timeout=10), "no background refresh"
    fake.fail_with(500, "InternalServerException", "down")
    time.sleep(1.0)
    record(*debug, *PRINT_TOKEN)
    record("--status", "--json")
    fake.clear_failures()
    tokens |= set(fake.issued)

    pid = json.loads(user.wev("--status", "--json").stdout)["pid"]
    daemon_environ = Path(f"/proc/{pid}/environ").read_bytes()
    logs = user.log_file.read_text()

    assert len(tokens) >= 3 and all(len(token) > 20 for token in tokens)
    for text in [*outputs, logs]:
        assert not any(token in text for token in tokens), text[:300]
        assert ENV_SECRET not in text
    assert ENV_SECRET.encode() not in daemon_environ
    assert b"AWS_ACCESS_KEY_ID" not in daemon_environ
    assert "DEBUG" in logs or "INFO" in logs  # the log was really written


def test_debug_logs_of_daemon_and_client_hold_no_token(user: User, fake: FakeCodeArtifact) -> None:
    from conftest import Daemon

    user.write("work/project/wev.yml", CONFIG)
    daemon = Daemon(user)  # --log-level DEBUG
    try:
        fake.set_lifetime(4)
        first = user.wev("--log-level", "DEBUG", *PRINT_TOKEN)
        assert fake.wait_for_call_count(2, timeout=10)
        explain = user.wev("--log-level", "DEBUG", "--explain")
    finally:
        daemon.stop()

    tokens = set(fake.issued)
    assert first.stdout in tokens and "DEBUG" in daemon.log
    for text in (first.stderr, explain.stdout, explain.stderr, daemon.log):
        assert not any(token in text for token in tokens)
