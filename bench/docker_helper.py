"""Time a Docker credential helper's ``get`` for an ECR registry: wev against Amazon's ecr-login.

Both are asked for the same registry, ``123456789012.dkr.ecr.eu-west-1.amazonaws.com``,
with the same AWS keys, against the same fake ECR (``tests/fakes/ecr.py``):

- ``docker-credential-wev get`` with a warm daemon (one GetAuthorizationToken for the run),
  through ``AWS_ENDPOINT_URL_ECR``;
- ``docker-credential-ecr-login get`` (Debian's amazon-ecr-credential-helper) with its cache
  warm (``AWS_ECR_CACHE_DIR``, a folder of this run). Its AWS SDK has no endpoint setting, so
  it reaches the fake as ``https://api.ecr.eu-west-1.amazonaws.com`` through
  ``tests/fakes/internet.py`` (``HTTPS_PROXY`` and a throwaway CA in ``SSL_CERT_FILE``); warm,
  it makes no call at all.

Each round runs the helpers as Docker does (a process, the server URL on stdin), interleaved
with ``python -c pass`` and ``/bin/true`` as baselines measured on the same machine at the same
moment; a second wev row runs the same helper through a launcher that imports ``re`` first (what
pip before 25.0 writes for a console script), which is why wev installs it as a script of its
own. Medians of ``--rounds`` calls::

    .venv/bin/python bench/docker_helper.py --rounds 200
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from startup import ACCESS_KEY, BIN, PYTHON, SECRET_KEY, make_user, running_daemon
from timing import row, timed_run

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tests"))
from fakes.ecr import FakeEcr  # type: ignore[import-not-found,unused-ignore]
from fakes.internet import FakeInternet  # type: ignore[import-not-found,unused-ignore]

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
ECR_API = "api.ecr.eu-west-1.amazonaws.com"
ECR_LOGIN = "docker-credential-ecr-login"
WEV_HELPER = os.path.join(BIN, "docker-credential-wev")
#: What pip before 25.0 (distlib) writes for a console script: ``re`` comes first.
OLD_LAUNCHER = """\
#!{python}
import re
import sys
from wev_client.docker_helper import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def one_call(argv: list[str], stdin: str, cwd: str, env: dict[str, str]) -> float:
    """Milliseconds of one process, as Docker runs a helper; the run stops if it fails."""
    return timed_run(
        argv, stdin=stdin, cwd=cwd, env=env, answered=lambda out: not stdin or '"Secret"' in out
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    ecr_login = shutil.which(ECR_LOGIN)
    if ecr_login is None:
        sys.exit(f"{ECR_LOGIN} is not installed (Debian: amazon-ecr-credential-helper)")
    root = tempfile.mkdtemp(prefix="wev-dh-")
    try:
        with FakeEcr({ACCESS_KEY: SECRET_KEY}) as ecr:
            user = make_user(root, "http://127.0.0.1:1")
            env = {
                **user.env,
                "AWS_ENDPOINT_URL_ECR": ecr.url,
                "NO_PROXY": "127.0.0.1",
                "no_proxy": "127.0.0.1",
            }
            launcher = Path(root, "old-pip-docker-credential-wev")
            launcher.write_text(OLD_LAUNCHER.format(python=PYTHON))
            launcher.chmod(0o700)
            with (
                FakeInternet(Path(root, "internet"), {ECR_API: ecr.url}) as internet,
                running_daemon(user),
            ):
                login_env = {**env, **internet.env, "AWS_ECR_CACHE_DIR": f"{root}/ecr-cache"}
                commands = {
                    "docker-credential-wev get, warm daemon": ([WEV_HELPER, "get"], REGISTRY, env),
                    "docker-credential-ecr-login get, warm cache": (
                        [ecr_login, "get"],
                        REGISTRY,
                        login_env,
                    ),
                    "docker-credential-wev get, old pip's launcher": (
                        [str(launcher), "get"],
                        REGISTRY,
                        env,
                    ),
                    "python -c pass": ([PYTHON, "-c", "pass"], "", env),
                    "/bin/true": (["/bin/true"], "", env),
                }
                for argv, stdin, command_env in commands.values():  # warm: caches, daemon
                    one_call(argv, stdin, user.project, command_env)
                calls_before = {"wev": ecr.call_count}
                times: dict[str, list[float]] = {name: [] for name in commands}
                for _ in range(args.rounds):  # interleaved: all see the same machine
                    for name, (argv, stdin, command_env) in commands.items():
                        times[name].append(one_call(argv, stdin, user.project, command_env))
                calls = ecr.call_count - calls_before["wev"]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"One `get` of {REGISTRY}, {args.rounds} rounds (median, p90, min):\n")
    print("| command | median | p90 | min |")
    print("|---|---|---|---|")
    medians = {name: row(name, samples) for name, samples in times.items()}
    wev, login = (medians[name] for name in list(commands)[:2])
    print(
        f"\nwev / ecr-login = {wev / login:.2f}; wev / python -c pass = "
        f"{wev / medians['python -c pass']:.2f}; ECR calls during the rounds: {calls}"
    )


if __name__ == "__main__":
    main()
