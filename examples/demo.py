"""``make demo``: wev's main job, for real, on this machine, with no AWS account.

It starts a CodeArtifact stand-in (the real wire protocol, SigV4 signatures
checked) and a private package index that accepts only a token the stand-in
issued and that has not expired, both on 127.0.0.1, gives itself a temporary
HOME, runtime folder and project (``examples/wev.yml``), and runs the real
``wev``, ``wev-daemon`` and pip of this environment:

1. ``wev pip install corp-lib``: the first call starts the daemon, which
   fetches one token; pip installs from the private index with it;
2. a second terminal's ``wev`` gets the same token, with no call to AWS
   (``wev --status`` counts the calls);
3. the daemon refreshes the token in the background, at 75% of its lifetime
   and before it expires, with no ``wev`` call (the stand-in issues 20 s
   tokens so that this shows in seconds; CodeArtifact's are 15 minutes to 12 hours).

It stops everything it started, removes its folder, and prints what it
proved; exit status 1 if any of it did not hold. The stand-ins are the tests'
own (``tests/fakes`` of this checkout): one fake for the demo and the tests,
and none of it is installed with wev.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fakes: part of the checkout, not of the package

from fakes.codeartifact import FakeCodeArtifact  # noqa: E402
from fakes.pypi_index import FakePyPIIndex  # noqa: E402
from fakes.wheels import build_wheel  # noqa: E402

BIN = Path(sys.executable).parent  # the environment wev is installed in
WEV = str(BIN / "wev")

#: Token lifetime the stand-in grants; the daemon refreshes at 75% of it.
LIFETIME = 20.0
REFRESH_FRACTION = 0.75
#: Longest any one command may run (pip included), and the refresh may take to show.
STEP_TIMEOUT = 120.0
REFRESH_TIMEOUT = LIFETIME + 20.0
DAEMON_STOP_TIMEOUT = 10.0

ACCESS_KEY = "AKIADEMO000000000001"
SECRET_KEY = "demo-secret-key-00000000000000000000000000"  # noqa: S105 - the stand-in's
PACKAGE, VERSION = "corp-lib", "1.2.3"

#: What a command sees of its token: a fingerprint, never the token itself.
PRINT_FINGERPRINT = (
    "import hashlib, os; token = os.environ['CODEARTIFACT_AUTH_TOKEN']; "
    "print('token', hashlib.sha256(token.encode()).hexdigest()[:12])"
)


SHOWN = "python -c '...'   (prints the sha256 of $CODEARTIFACT_AUTH_TOKEN)"


class DemoFailed(Exception):
    """A step did not do what the demo shows."""


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def say(text: str = "") -> None:
    print(text, flush=True)


class Demo:
    """A temporary user with fake AWS keys, a project, and the real ``wev`` on its PATH."""

    def __init__(self, root: Path, codeartifact: FakeCodeArtifact) -> None:
        self.root = root
        self.home = root / "home"
        self.project = root / "project"
        runtime = root / "run"
        (self.home / ".aws").mkdir(parents=True)
        self.project.mkdir()
        runtime.mkdir(mode=0o700)
        (self.home / ".aws" / "config").write_text("[default]\nregion = eu-west-1\n")
        (self.home / ".aws" / "credentials").write_text(
            f"[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        )
        shutil.copy(ROOT / "examples" / "wev.yml", self.project / "wev.yml")
        self.socket = str(runtime / "wev" / "daemon.sock")
        # Built from nothing: no AWS_* or pip settings of the caller's reach the demo.
        self.env = {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_STATE_HOME": str(root / "state"),
            "XDG_CACHE_HOME": str(root / "cache"),
            "XDG_CONFIG_HOME": str(root / "config"),
            "AWS_ENDPOINT_URL_CODEARTIFACT": codeartifact.url,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1",
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "PIP_KEYRING_PROVIDER": "disabled",
        }

    def wev(self, terminal: int, *args: str, shown: str | None = None) -> str:
        """Run the real ``wev`` as typed in ``terminal``; show and return its output."""
        say(f"terminal {terminal} $ wev {shown or ' '.join(args)}")
        result = subprocess.run(
            [WEV, *args],
            cwd=self.project,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        for line in result.stdout.splitlines():
            say(f"  | {line}")
        if result.returncode != 0:
            raise DemoFailed(f"wev {args[0]} ... exited with status {result.returncode}")
        return result.stdout

    def stop_daemon(self) -> int | None:
        """Stop the daemon that the first ``wev`` started; its pid, if one ran.

        Its lock file, in the demo's own runtime folder, names it.
        """
        try:
            pid = int(Path(self.socket + ".lock").read_text().strip() or 0)
        except (OSError, ValueError):
            return None
        if not pid or not alive(pid):
            return None
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + DAEMON_STOP_TIMEOUT
        while alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + DAEMON_STOP_TIMEOUT
            time.sleep(0.02)
        return pid


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie that init has yet to reap does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return False
        try:  # no /proc (macOS): launchd reaps at once, so a live pid is running
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def run(demo: Demo, codeartifact: FakeCodeArtifact, index: FakePyPIIndex) -> list[str]:
    """The three steps; what each proved, in one line each."""
    index_url = f"{index.url}/pypi/shared/simple/"
    say(f"CodeArtifact stand-in: {codeartifact.url} (checks SigV4; tokens live {LIFETIME:.0f} s)")
    say(f"private index:         {index_url} (only a valid token gets in)")
    say(f"project:               {demo.project}/wev.yml")
    for line in (demo.project / "wev.yml").read_text().splitlines():
        if not line.startswith("#"):
            say(f"  | {line}")

    say("\n1. pip installs a private package (the first wev starts the daemon: one token call)")
    demo.wev(1, "pip", "install", "--target", "site", "--progress-bar", "off", PACKAGE)
    installed = (demo.project / "site" / "corp_lib.py").read_text()
    used = {attempt.token for attempt in index.attempts if attempt.valid and attempt.token}
    if f'VERSION = "{VERSION}"' not in installed or len(used) != 1:
        raise DemoFailed(f"pip did not install {PACKAGE} {VERSION} with one valid token")
    first = used.pop()
    if codeartifact.call_count != 1:
        raise DemoFailed(f"{codeartifact.call_count} token calls for one pip install")
    say(f"   the index let pip in with token {fingerprint(first)}; token calls to AWS so far: 1")

    say("\n2. another terminal, a moment later: the same token, no call to AWS")
    second = demo.wev(2, "python", "-c", PRINT_FINGERPRINT, shown=SHOWN)
    status = demo.wev(2, "--status")
    if second.split() != ["token", fingerprint(first)]:
        raise DemoFailed("the second terminal got another token")
    # The daemon counts the calls AWS answered: the token and the repository's endpoint.
    calls = codeartifact.call_count + codeartifact.endpoint_call_count
    if codeartifact.call_count != 1 or f"upstream calls since start: {calls}" not in status:
        raise DemoFailed("the second terminal's call reached AWS")

    due = LIFETIME * REFRESH_FRACTION
    say(f"\n3. nobody calls wev; the daemon refreshes the token at 75% of its life ({due:.0f} s)")
    say("   waiting...")
    if not codeartifact.wait_for_call_count(2, REFRESH_TIMEOUT):
        raise DemoFailed(f"no refresh within {REFRESH_TIMEOUT:.0f} s")
    # The call is counted as it arrives; its token is issued a moment later.
    deadline = time.monotonic() + 5
    while len(codeartifact.issued) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    margin = codeartifact.issued[first] - codeartifact.now()
    if margin <= 0:
        raise DemoFailed("the token expired before the daemon refreshed it")
    say(f"   the daemon fetched a new token {margin:.1f} s before the old one expired")
    fresh = [token for token in codeartifact.issued if token != first]
    status = demo.wev(1, "--status")
    third = demo.wev(1, "python", "-c", PRINT_FINGERPRINT, shown=SHOWN)
    if third.split() != ["token", fingerprint(fresh[-1])] or codeartifact.call_count != 2:
        raise DemoFailed("the next call did not get the refreshed token at once")
    if f"upstream calls since start: {calls + 1}" not in status:
        raise DemoFailed("wev --status does not count the refresh as one call to AWS")

    return [
        f"wev pip install installed {PACKAGE} {VERSION} from a private index that takes only a "
        f"valid CodeArtifact token; one GetAuthorizationToken call, SigV4-signed, fetched it",
        f"a second terminal got the same token ({fingerprint(first)}) without a call to AWS: "
        f"wev --status counted {calls} upstream calls (the token and the repository's endpoint)",
        f"the daemon refreshed the token in the background at 75% of its {LIFETIME:.0f} s life, "
        f"{margin:.1f} s before expiry; the next call got the new one "
        f"({fingerprint(fresh[-1])}) at once, still 2 calls in all",
    ]


def main() -> int:
    say("wev demo: a CodeArtifact token fetched once, shared, and refreshed while pip installs")
    say("from a private index; all on 127.0.0.1, no AWS account needed\n")
    root = Path(tempfile.mkdtemp(prefix="wev-demo-"))  # short: socket paths are limited
    say(f"demo folder: {root}")
    wheels = root / "wheels"
    build_wheel(wheels, PACKAGE, VERSION)
    proved: list[str] = []
    failure = ""
    daemon: int | None = None
    try:
        with FakeCodeArtifact({ACCESS_KEY: SECRET_KEY}, domains={"corp"}) as codeartifact:
            codeartifact.set_lifetime(LIFETIME)
            with FakePyPIIndex(wheels, codeartifact) as index:
                codeartifact.repository_base_url = index.url
                demo = Demo(root, codeartifact)
                try:
                    proved = run(demo, codeartifact, index)
                except (DemoFailed, subprocess.TimeoutExpired) as error:
                    failure = str(error)
                finally:
                    daemon = demo.stop_daemon()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    say()
    if failure:
        say(f"the demo FAILED: {failure}")
    else:
        say("What this demo proved:")
        for line in proved:
            say(f"  ok: {line}")
    stopped = f"wev-daemon (pid {daemon}), " if daemon else ""
    say(f"Stopped {stopped}the stand-in and the index, removed {root}: nothing is left running.")
    if not failure:
        say("\nNext: a wev.yml of your own in a project (see README, Quick start), then `wev CMD`.")
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
