"""CI: fetch a token against the CodeArtifact stand-in with whatever versions are installed.

Run by ``.ci/run`` in a fresh venv holding the floor of every dependency
(``.ci/floors.txt``), so the floors in pyproject.toml stay true: through an
auto-started daemon, then in-process (``WEV_NO_DAEMON=1``). Exit status 1 and
one line when either does not print a token the stand-in issued.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the stand-in: part of the checkout, not the package

from fakes.codeartifact import FakeCodeArtifact  # noqa: E402

KEY, SECRET = "AKIAFLOOR00000000001", "floor-secret-key-0000000000000000000000000"
WEV = str(Path(sys.executable).parent / "wev")


def stop_daemon(lock: Path) -> None:
    """Stop the daemon the first call started (its pid is in the socket's lock file)."""
    pid = int(lock.read_text().strip() or 0) if lock.exists() else 0
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="wev-floor-"))
    try:
        home, runtime, project = root / "home", root / "run", root / "project"
        (home / ".aws").mkdir(parents=True)
        runtime.mkdir(mode=0o700)
        project.mkdir()
        (home / ".aws" / "config").write_text("[default]\nregion = eu-west-1\n")
        (home / ".aws" / "credentials").write_text(
            f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
        )
        (project / "wev.yml").write_text(
            "CODEARTIFACT_AUTH_TOKEN: {plugin: {id: wev-awscodeartifact, domain: corp}}\n"
        )
        with FakeCodeArtifact({KEY: SECRET}) as fake:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(home),
                "XDG_RUNTIME_DIR": str(runtime),
                "XDG_STATE_HOME": str(root / "state"),
                "AWS_ENDPOINT_URL_CODEARTIFACT": fake.url,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
            for how, extra in (("through the daemon", {}), ("in-process", {"WEV_NO_DAEMON": "1"})):
                result = subprocess.run(
                    [WEV, "printenv", "CODEARTIFACT_AUTH_TOKEN"],
                    cwd=project,
                    env={**env, **extra},
                    capture_output=True,
                    text=True,
                    timeout=60,
                    stdin=subprocess.DEVNULL,
                    check=False,
                )
                if not fake.is_valid_token(result.stdout.strip()):
                    print(f"no token {how}: {result.stderr.strip()}", file=sys.stderr)
                    return 1
            stop_daemon(runtime / "wev" / "daemon.sock.lock")
        print("a token through the daemon and in-process")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
