"""Time a keyring lookup of a CodeArtifact index URL: wev's backend against keyrings.codeartifact.

Both answer the same URL against the same fake CodeArtifact (``tests/fakes``, on 127.0.0.1,
through ``AWS_ENDPOINT_URL_CODEARTIFACT``), with the same AWS keys, two ways:

- in process: ``get_password`` in a Python that has already imported the backend, as pip
  (``--keyring-provider import``) asks once per index and host;
- a process: ``keyring get URL aws``, as uv (``--keyring-provider subprocess``) runs it.

wev's answer comes from a warm daemon (one GetAuthorizationToken for the whole run);
keyrings.codeartifact makes a boto3 client and calls AWS on every lookup. It pulls in boto3, so
it is not one of wev's dependencies: give the Python of a throwaway venv that has it. Each
backend runs in a venv of its own, as a user installs it (keyring scans every installed
package at start, so a venv as full as wev's test venv would slow both alike)::

    python -m venv /tmp/kc && /tmp/kc/bin/pip install keyrings.codeartifact
    python -m venv /tmp/wk && /tmp/wk/bin/pip install -e '.[keyring]'
    .venv/bin/python bench/keyring_lookup.py --wev-python /tmp/wk/bin/python \
        --codeartifact-python /tmp/kc/bin/python

Medians of ``--rounds`` lookups, the two backends interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from startup import BIN, fake_codeartifact, make_user, running_daemon
from timing import RUN_TIMEOUT, row, timed_run

URL = "https://corp-123456789012.d.codeartifact.eu-west-1.amazonaws.com/pypi/shared/simple/"
#: Each child prints the milliseconds of each lookup after one warm-up lookup.
IN_PROCESS = """\
import json, sys, time
{setup}
backend.get_password(sys.argv[1], "aws")  # warm-up: imports, first connection
times = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    assert backend.get_password(sys.argv[1], "aws")
    times.append((time.perf_counter() - start) * 1000)
print(json.dumps(times))
"""
WEV_SETUP = "from wev_client.keyring_backend import WevKeyring; backend = WevKeyring()"
CODEARTIFACT_SETUP = (
    "from keyrings.codeartifact import CodeArtifactBackend; backend = CodeArtifactBackend()"
)


def in_process(python: str, setup: str, rounds: int, cwd: str, env: dict[str, str]) -> list[float]:
    result = subprocess.run(
        [python, "-c", IN_PROCESS.format(setup=setup), URL, str(rounds)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"{python}: {result.stderr.strip()}")
    times: list[float] = json.loads(result.stdout)
    return times


def one_process(
    keyring: str, cwd: str, env: dict[str, str], args: tuple[str, ...] = ("get", URL, "aws")
) -> float:
    """Milliseconds of one ``keyring`` command (a lookup by default)."""
    return timed_run([keyring, *args], cwd=cwd, env=env, answered=lambda out: bool(out.strip()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--wev-python", default=os.path.join(BIN, "python"), help="a venv with wev[keyring]"
    )
    parser.add_argument(
        "--codeartifact-python", help="the Python of a venv with keyrings.codeartifact"
    )
    args = parser.parse_args()
    other = args.codeartifact_python
    other_keyring = os.path.join(os.path.dirname(other), "keyring") if other else None
    root = tempfile.mkdtemp(prefix="wev-kr-")
    try:
        with fake_codeartifact() as fake:
            user = make_user(root, fake.url)
            env = {**user.env, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
            with running_daemon(user):
                wev_keyring = os.path.join(os.path.dirname(args.wev_python), "keyring")
                times: dict[str, list[float]] = {
                    "wev": [],
                    "codeartifact": [],
                    "wev start": [],
                    "codeartifact start": [],
                }
                listing = ("--list-backends",)  # keyring's own start-up: no lookup
                calls = {"wev": 0, "codeartifact": 0}
                for _ in range(args.rounds):  # interleaved: both see the same machine
                    before = fake.call_count
                    times["wev"].append(one_process(wev_keyring, user.project, env))
                    calls["wev"] += fake.call_count - before
                    times["wev start"].append(one_process(wev_keyring, user.project, env, listing))
                    if other_keyring:
                        times["codeartifact start"].append(
                            one_process(other_keyring, user.project, env, listing)
                        )
                        before = fake.call_count
                        times["codeartifact"].append(one_process(other_keyring, user.project, env))
                        calls["codeartifact"] += fake.call_count - before
                before = fake.call_count
                inproc = {
                    "wev": in_process(args.wev_python, WEV_SETUP, args.rounds, user.project, env)
                }
                calls["wev"] += fake.call_count - before
                if other:
                    before = fake.call_count
                    inproc["codeartifact"] = in_process(
                        other, CODEARTIFACT_SETUP, args.rounds, user.project, env
                    )
                    calls["codeartifact"] += fake.call_count - before
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"One lookup of {URL}, {args.rounds} rounds (median, p90, min):\n")
    print("| lookup | median | p90 | min |")
    print("|---|---|---|---|")
    medians = {
        "wev in process": row("wev, in process (pip)", inproc["wev"]),
        "wev process": row("wev, `keyring get` (uv)", times["wev"]),
    }
    row("(keyring's start-up alone in wev's venv: `keyring --list-backends`)", times["wev start"])
    if other:
        medians["other in process"] = row(
            "keyrings.codeartifact, in process (pip)", inproc["codeartifact"]
        )
        medians["other process"] = row(
            "keyrings.codeartifact, `keyring get` (uv)", times["codeartifact"]
        )
        row(
            "(keyring's start-up alone in its venv: `keyring --list-backends`)",
            times["codeartifact start"],
        )
        print(
            f"\nin process: keyrings.codeartifact / wev = "
            f"{medians['other in process'] / medians['wev in process']:.0f}x; "
            f"`keyring get`: {medians['other process'] / medians['wev process']:.1f}x"
        )
    lookups = args.rounds * 2 + 1
    print(
        f"GetAuthorizationToken calls for {lookups} lookups each: wev {calls['wev']}"
        + (f", keyrings.codeartifact {calls['codeartifact']}" if other else "")
    )


if __name__ == "__main__":
    main()
