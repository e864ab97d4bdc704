"""Load benchmark of ``wev-daemon``: raw protocol requests at 1, 10 and 100 concurrent clients.

Run ``.venv/bin/python bench/load.py [--requests N] [--json]`` (about 10 s with
the defaults). It sets up the same isolated user as ``bench/startup.py`` (temp
HOME with fake AWS keys, a project whose ``wev.yml`` has a ``wev-echo`` and a
``wev-awscodeartifact`` entry served by the tests' fake CodeArtifact on
127.0.0.1), starts the real ``wev-daemon``, warms it with one ``wev`` run
and a few hundred requests, then for each level of concurrency runs that many
clients, each sending ``POST /v1/resolve`` requests one after another until
the level's count is done. A request is what ``wev`` sends from the project:
the same body, ``Connection: close``, a new connection each time; an answer
counts only if it is a 200 with the expected values. Like a real ``wev``, the
request carries the caller's whole environment (``process_env``) and working
folder: the bench runs as a developer's shell would, with ``DEV_ENV`` below
(about 60 variables, 5 KiB: a desktop session, a terminal, direnv, language
managers, ``LS_COLORS``), fixed here so that every run sends the same bytes.

It prints, per level, requests/s and the p50, p99 and max latency (connect to
last byte), then the daemon's RSS after the warm-up and after the whole run,
topped up to 20,000 requests at the highest concurrency if the levels did not
reach that many. ``--json`` prints the same figures as one JSON object. The
clients are one asyncio process on the same machine as the daemon, so on a
small machine the figures are those of both sharing its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from startup import WEV, fake_codeartifact, make_user, running_daemon
from wire import (  # type: ignore[import-not-found,unused-ignore]
    exchange,
    resolve_message,
    rss_kib,
)

from wev_client import protocol
from wev_client.protocol import codec, errors

LEVELS = (1, 10, 100)
#: The daemon's RSS is read again once this many requests have been made in all.
RSS_REQUESTS = 20_000
WARM_UP_REQUESTS = 500


def blob(seed: str, size: int) -> str:
    """``size`` characters of base64url, the same on every run: direnv's state variables."""
    text, counter = "", 0
    while len(text) < size:
        digest = hashlib.sha256(f"{seed}{counter}".encode()).digest()
        text += base64.urlsafe_b64encode(digest).decode().rstrip("=")
        counter += 1
    return "eJx" + text[: size - 3]


#: A developer's environment as a desktop terminal with direnv and a few language
#: managers has it (the isolated user's HOME and runtime folder are added).
DEV_ENV = {
    "SHELL": "/bin/bash",
    "USER": "dev",
    "LOGNAME": "dev",
    "HOSTNAME": "dev-laptop",
    "TERM": "xterm-256color",
    "COLORTERM": "truecolor",
    "TERM_PROGRAM": "vscode",
    "TERM_PROGRAM_VERSION": "1.89.1",
    "SHLVL": "2",
    "EDITOR": "vim",
    "VISUAL": "code --wait",
    "PAGER": "less",
    "LESS": "-FRX",
    "LC_ALL": "C.UTF-8",
    "MAIL": "/var/mail/dev",
    "DISPLAY": ":0",
    "WAYLAND_DISPLAY": "wayland-0",
    "XDG_SESSION_TYPE": "wayland",
    "XDG_SESSION_ID": "2",
    "XDG_CURRENT_DESKTOP": "ubuntu:GNOME",
    "XDG_DATA_DIRS": "/usr/share/ubuntu:/usr/local/share/:/usr/share/:/var/lib/snapd/desktop",
    "XDG_CONFIG_DIRS": "/etc/xdg/xdg-ubuntu:/etc/xdg",
    "DESKTOP_SESSION": "ubuntu",
    "SESSION_MANAGER": "local/dev-laptop:@/tmp/.ICE-unix/2145,unix/dev-laptop:/tmp/.ICE-unix/2145",
    "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus",
    "SSH_AUTH_SOCK": "/run/user/1000/keyring/ssh",
    "GPG_AGENT_INFO": "/run/user/1000/gnupg/S.gpg-agent:0:1",
    "GNOME_TERMINAL_SCREEN": "/org/gnome/Terminal/screen/5b1a3f0e_46c4_4bb6_9f2c_6d1e6a0c2b7d",
    "HISTSIZE": "100000",
    "HISTCONTROL": "ignoreboth:erasedups",
    "PYENV_ROOT": "/home/dev/.pyenv",
    "PYENV_SHELL": "bash",
    "NVM_DIR": "/home/dev/.nvm",
    "NVM_BIN": "/home/dev/.nvm/versions/node/v20.12.2/bin",
    "NVM_INC": "/home/dev/.nvm/versions/node/v20.12.2/include/node",
    "GOPATH": "/home/dev/go",
    "CARGO_HOME": "/home/dev/.cargo",
    "RUSTUP_HOME": "/home/dev/.rustup",
    "JAVA_HOME": "/usr/lib/jvm/java-17-openjdk-amd64",
    "KUBECONFIG": "/home/dev/.kube/config:/home/dev/.kube/staging.yaml",
    "GIT_EDITOR": "vim",
    "AWS_REGION": "eu-west-1",
    "AWS_SDK_LOAD_CONFIG": "1",
    "AWS_PAGER": "",
    "OLDPWD": "/home/dev/src",
    "DIRENV_DIR": "-/home/dev/src/project",
    "DIRENV_FILE": "/home/dev/src/project/.envrc",
    "DIRENV_WATCHES": blob("watches", 380),
    "DIRENV_DIFF": blob("diff", 370),
    "LS_COLORS": (
        "rs=0:di=01;34:ln=01;36:mh=00:pi=40;33:so=01;35:do=01;35:bd=40;33;01:cd=40;33;01:"
        "or=40;31;01:mi=00:su=37;41:sg=30;43:ca=00:tw=30;42:ow=34;42:st=37;44:ex=01;32:"
        "*.tar=01;31:*.tgz=01;31:*.arc=01;31:*.arj=01;31:*.taz=01;31:*.lha=01;31:"
        "*.lz4=01;31:*.lzh=01;31:*.lzma=01;31:*.tlz=01;31:*.txz=01;31:*.tzo=01;31:"
        "*.t7z=01;31:*.zip=01;31:*.z=01;31:*.dz=01;31:*.gz=01;31:*.lrz=01;31:*.lz=01;31:"
        "*.lzo=01;31:*.xz=01;31:*.zst=01;31:*.tzst=01;31:*.bz2=01;31:*.bz=01;31:"
        "*.tbz=01;31:*.tbz2=01;31:*.tz=01;31:*.deb=01;31:*.rpm=01;31:*.jar=01;31:"
        "*.war=01;31:*.ear=01;31:*.sar=01;31:*.rar=01;31:*.alz=01;31:*.ace=01;31:"
        "*.zoo=01;31:*.cpio=01;31:*.7z=01;31:*.rz=01;31:*.cab=01;31:*.wim=01;31:"
        "*.swm=01;31:*.dwm=01;31:*.esd=01;31:*.avif=01;35:*.jpg=01;35:*.jpeg=01;35:"
        "*.mjpg=01;35:*.mjpeg=01;35:*.gif=01;35:*.bmp=01;35:*.pbm=01;35:*.pgm=01;35:"
        "*.ppm=01;35:*.tga=01;35:*.xbm=01;35:*.xpm=01;35:*.tif=01;35:*.tiff=01;35:"
        "*.png=01;35:*.svg=01;35:*.svgz=01;35:*.mng=01;35:*.pcx=01;35:*.mov=01;35:"
        "*.mpg=01;35:*.mpeg=01;35:*.m2v=01;35:*.mkv=01;35:*.webm=01;35:*.webp=01;35:"
        "*.ogm=01;35:*.mp4=01;35:*.m4v=01;35:*.mp4v=01;35:*.vob=01;35:*.qt=01;35:"
        "*.nuv=01;35:*.wmv=01;35:*.asf=01;35:*.rm=01;35:*.rmvb=01;35:*.flc=01;35:"
        "*.avi=01;35:*.fli=01;35:*.flv=01;35:*.gl=01;35:*.dl=01;35:*.xcf=01;35:"
        "*.xwd=01;35:*.yuv=01;35:*.cgm=01;35:*.emf=01;35:*.ogv=01;35:*.ogx=01;35:"
        "*.aac=00;36:*.au=00;36:*.flac=00;36:*.m4a=00;36:*.mid=00;36:*.midi=00;36:"
        "*.mka=00;36:*.mp3=00;36:*.mpc=00;36:*.ogg=00;36:*.ra=00;36:*.wav=00;36:"
        "*.oga=00;36:*.opus=00;36:*.spx=00;36:*.xspf=00;36:*~=00;90:*#=00;90:*.bak=00;90:"
        "*.old=00;90:*.orig=00;90:*.part=00;90:*.rej=00;90:*.swp=00;90:*.tmp=00;90:"
    ),
    "PATH": (
        "/home/dev/.local/bin:/home/dev/.pyenv/shims:/home/dev/.pyenv/bin:"
        "/home/dev/.nvm/versions/node/v20.12.2/bin:/home/dev/.cargo/bin:/home/dev/go/bin:"
        "/home/dev/.sdkman/candidates/java/current/bin:/usr/local/sbin:/usr/local/bin:"
        "/usr/sbin:/usr/bin:/sbin:/bin:/usr/games:/usr/local/games:/snap/bin"
    ),
    "_": "/usr/bin/wev",
}
#: Every wait is bounded: one request, the warm-up ``wev``, one whole level.
REQUEST_TIMEOUT = 10.0
COMMAND_TIMEOUT = 60.0
LEVEL_TIMEOUT = 600.0


@dataclass(frozen=True)
class Level:
    clients: int
    requests: int
    errors: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    #: The daemon's CPU time (user + system) per request: what the load on the
    #: machine changes least.
    daemon_cpu_us: float


@dataclass(frozen=True)
class Figures:
    """Every level, and the daemon's RSS after the warm-up and after ``requests`` in all."""

    levels: list[Level]
    rss_warm_kib: int
    rss_after_kib: int
    requests: int
    errors: Counter[str]


@dataclass(frozen=True)
class Run:
    latencies: list[float]
    errors: Counter[str]
    seconds: float
    daemon_cpu: float


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- one request, as wev sends it --------------------------------------------------------


def check(raw: bytes, expected: dict[str, str]) -> str:
    """An empty string for a 200 with the expected values, else what is wrong."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.1 200 "):
        return status.decode(errors="replace") or "closed without an answer"
    try:
        values = codec.loads(body)
    except errors.ProtocolError:
        return "an answer that is not JSON"
    if not isinstance(values, dict) or values.get("values") != expected:
        return "unexpected values"
    return ""


async def hammer(
    path: str, message: bytes, expected: dict[str, str], requests: int, clients: int, pid: int
) -> Run:
    """``requests`` requests from ``clients`` concurrent clients, each one at a time."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    left = requests

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    problem = check(await exchange(path, message), expected)
            except (OSError, TimeoutError) as error:
                problem = f"{type(error).__name__}: {error}"
            latencies.append(time.perf_counter() - started)
            if problem:
                errors[problem] += 1

    started, cpu = time.perf_counter(), cpu_seconds(pid)
    async with asyncio.timeout(LEVEL_TIMEOUT):
        await asyncio.gather(*(client() for _ in range(clients)))
    return Run(latencies, errors, time.perf_counter() - started, cpu_seconds(pid) - cpu)


def level(clients: int, run: Run) -> Level:
    ordered = sorted(run.latencies)
    count = len(ordered)

    def percentile(fraction: float) -> float:
        return ordered[min(count - 1, int(count * fraction))] * 1000

    return Level(
        clients,
        count,
        sum(run.errors.values()),
        round(run.seconds, 3),
        round(count / run.seconds, 1),
        round(percentile(0.50), 3),
        round(percentile(0.99), 3),
        round(ordered[-1] * 1000, 3),
        round(run.daemon_cpu / count * 1e6, 1),
    )


def developer_env(user_env: Mapping[str, str]) -> dict[str, str]:
    """``DEV_ENV`` for the isolated user: its HOME, runtime folder and AWS endpoint, and a
    PATH that finds this machine's commands after the developer's own folders."""
    return {**DEV_ENV, **user_env, "PATH": f"{DEV_ENV['PATH']}:{user_env['PATH']}"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=5000, help="requests at each level")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.requests < max(LEVELS):
        parser.error(f"--requests must be at least {max(LEVELS)}")
    if not os.path.exists("/proc/self/status"):
        parser.error("this benchmark reads the daemon's RSS from /proc (Linux)")

    root = tempfile.mkdtemp(prefix="wev-bench-")  # short: socket paths are limited
    try:
        with fake_codeartifact() as fake:
            user = make_user(root, fake.url)
            with running_daemon(user) as daemon:
                env = developer_env(user.env)
                # The real client warms the daemon and tells the value to expect.
                warm = subprocess.run(
                    [WEV, "printenv", "CODEARTIFACT_AUTH_TOKEN"],
                    cwd=user.project,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=COMMAND_TIMEOUT,
                    check=False,
                )
                if warm.returncode != 0:
                    raise RuntimeError(f"wev failed:\n{warm.stderr}")
                message = resolve_message(user.project, env["HOME"], env)
                expected = {"CODEARTIFACT_AUTH_TOKEN": warm.stdout.strip(), "GREETING": "hello"}
                print(f"warming up, then {args.requests} requests per level...", file=sys.stderr)
                figures = asyncio.run(
                    measure(user.socket, message, expected, args.requests, daemon.pid)
                )
                upstream_calls = fake.call_count
    finally:
        shutil.rmtree(root, ignore_errors=True)

    report = {
        "python": sys.version.split()[0],
        "cores": os.cpu_count(),
        "machine": f"{platform.system()} {platform.machine()}",
        "levels": [asdict(item) for item in figures.levels],
        "rss_kib": {
            "after_warm_up": figures.rss_warm_kib,
            "after": figures.rss_after_kib,
            "requests": figures.requests,
        },
        "codeartifact_calls": upstream_calls,
        "errors": dict(figures.errors),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_text(figures, upstream_calls)
    return 1 if figures.errors else 0


async def measure(
    path: str, message: bytes, expected: dict[str, str], requests: int, pid: int
) -> Figures:
    """Warm up, run every level, top up to RSS_REQUESTS; RSS before and after."""
    errors: Counter[str] = Counter()
    warm = await hammer(path, message, expected, WARM_UP_REQUESTS, max(LEVELS), pid)
    errors.update(warm.errors)
    rss_warm = rss_kib(pid)
    levels = []
    for clients in LEVELS:
        run = await hammer(path, message, expected, requests, clients, pid)
        errors.update(run.errors)
        levels.append(level(clients, run))
    total = requests * len(LEVELS)
    if total < RSS_REQUESTS:
        run = await hammer(path, message, expected, RSS_REQUESTS - total, max(LEVELS), pid)
        errors.update(run.errors)
        total = RSS_REQUESTS
    return Figures(levels, rss_warm, rss_kib(pid), total, errors)


def print_text(figures: Figures, upstream_calls: int) -> None:
    print(
        f"wev-daemon under load: POST {protocol.RESOLVE_ROUTE} as wev sends it "
        f"(Connection: close); python {sys.version.split()[0]}, {os.cpu_count()} cores\n"
    )
    print(
        f"{'clients':>7}  {'requests':>8}  {'errors':>6}  {'req/s':>7}  "
        f"{'p50 ms':>7}  {'p99 ms':>7}  {'max ms':>7}  {'daemon CPU/req':>14}"
    )
    for item in figures.levels:
        print(
            f"{item.clients:>7}  {item.requests:>8}  {item.errors:>6}  "
            f"{item.requests_per_second:>7.0f}  {item.p50_ms:>7.2f}  {item.p99_ms:>7.2f}  "
            f"{item.max_ms:>7.2f}  {item.daemon_cpu_us:>11.0f} us"
        )
    before, after = figures.rss_warm_kib, figures.rss_after_kib
    print(
        f"\ndaemon RSS: {before / 1024:.1f} MiB after the warm-up, {after / 1024:.1f} MiB "
        f"after {figures.requests} requests ({after - before:+d} KiB)"
    )
    print(f"CodeArtifact calls: {upstream_calls}")
    for problem, count in figures.errors.most_common():
        print(f"error x{count}: {problem}")


if __name__ == "__main__":
    sys.exit(main())
