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

A terminal that runs ``wev`` again sends the very same bytes, and the daemon
reads a body it saw lately only once; so one more level has 100 clients each
sending a request of its own (the same environment in another working
folder), which the daemon reads in full every time.

It prints, per level, requests/s, the p50, p99 and max latency (connect to
last byte) and the daemon's CPU time per request (from /proc, what the load
of other processes changes least), then the daemon's RSS after the warm-up
and after the whole run, topped up to 20,000 requests at the highest
concurrency if the levels did not reach that many, and the verdicts on the
targets: 5,000 requests/s or more at 100 clients with p99 within 3x p50, and
an RSS under 50 MiB. That RSS is measured a second time for a daemon run
from a venv that holds wev and its dependencies alone, as a user installs it
(``--wev-only-venv``: made in a temporary folder with ``uv`` or ``venv`` and
pip, about a minute, unless given; ``none`` skips it): the dev venv's extra
packages are imported by the AWS SDK too. ``--json`` prints the same figures
as one JSON object. The clients are one asyncio process on the same machine
as the daemon, so on a small machine the figures are those of both sharing
its cores.
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

from startup import BIN, ROOT, fake_codeartifact, make_user, running_daemon
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
TARGET_REQUESTS_PER_SECOND = 5000
TARGET_P99_OVER_P50 = 3.0
TARGET_RSS_MIB = 50
#: Longest the venv with wev alone may take to make (it downloads nothing when cached).
VENV_TIMEOUT = 600.0
#: Every wait is bounded: one request, the warm-up ``wev``, one whole level.
REQUEST_TIMEOUT = 10.0
COMMAND_TIMEOUT = 60.0
LEVEL_TIMEOUT = 600.0


@dataclass(frozen=True)
class Level:
    clients: int
    #: Each client sends a request of its own (another working folder).
    distinct: bool
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
    #: The size of the request (head and body), and the variables of its environment.
    request_bytes: int
    request_variables: int


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
    path: str,
    message: bytes | Sequence[bytes],
    expected: dict[str, str],
    requests: int,
    clients: int,
    pid: int,
) -> Run:
    """``requests`` requests from ``clients`` concurrent clients, each one at a time;
    with a message per client, client ``i`` sends the ``i``-th."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    left = requests
    messages = [message] * clients if isinstance(message, bytes) else list(message)

    async def client(message: bytes) -> None:
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
        await asyncio.gather(*(client(messages[index]) for index in range(clients)))
    return Run(latencies, errors, time.perf_counter() - started, cpu_seconds(pid) - cpu)


def level(clients: int, run: Run, *, distinct: bool = False) -> Level:
    ordered = sorted(run.latencies)
    count = len(ordered)

    def percentile(fraction: float) -> float:
        return ordered[min(count - 1, int(count * fraction))] * 1000

    return Level(
        clients,
        distinct,
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
    parser.add_argument(
        "--wev-only-venv",
        default="",
        help="a venv with wev alone for the second RSS figure (made there if missing); "
        "default: a temporary one; none: skip it",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.requests < max(LEVELS):
        parser.error(f"--requests must be at least {max(LEVELS)}")
    if not os.path.exists("/proc/self/status"):
        parser.error("this benchmark reads the daemon's RSS from /proc (Linux)")

    root = tempfile.mkdtemp(prefix="wev-bench-")  # short: socket paths are limited
    try:
        with fake_codeartifact() as fake:
            print(f"warming up, then {args.requests} requests per level...", file=sys.stderr)
            dev = run_daemon(os.path.join(root, "dev"), fake.url, BIN, args.requests)
            wev_only: Figures | None = None
            if args.wev_only_venv != "none":
                venv = args.wev_only_venv or os.path.join(root, "wev-only-venv")
                print(f"a daemon from a venv with wev alone ({venv})...", file=sys.stderr)
                make_wev_only_venv(venv)
                bin_dir = os.path.join(venv, "bin")
                wev_only = run_daemon(os.path.join(root, "alone"), fake.url, bin_dir, 0)
            upstream_calls = fake.call_count
    finally:
        shutil.rmtree(root, ignore_errors=True)

    if args.json:
        print(json.dumps(report(dev, wev_only, upstream_calls), indent=2))
    else:
        print_text(dev, wev_only, upstream_calls)
    return 1 if dev.errors or (wev_only is not None and wev_only.errors) else 0


def run_daemon(root: str, endpoint: str, bin_dir: str, requests: int) -> Figures:
    """A daemon from ``bin_dir`` for a new user, warmed by that venv's ``wev``, then measured:
    every level (none when ``requests`` is 0), topped up to RSS_REQUESTS."""
    os.makedirs(root)
    user = make_user(root, endpoint)
    env = developer_env(user.env)
    with running_daemon(user, os.path.join(bin_dir, "wev-daemon")) as daemon:
        # The real client warms the daemon and tells the value to expect.
        warm = subprocess.run(
            [os.path.join(bin_dir, "wev"), "printenv", "CODEARTIFACT_AUTH_TOKEN"],
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
        # Other terminals: the same environment in other working folders.
        others = [
            resolve_message(user.project, env["HOME"], {**env, "PWD": f"{user.project}/{index}"})
            for index in range(max(LEVELS))
        ]
        expected = {"CODEARTIFACT_AUTH_TOKEN": warm.stdout.strip(), "GREETING": "hello"}
        return asyncio.run(
            measure(user.socket, message, others, expected, requests, daemon.pid, len(env))
        )


def make_wev_only_venv(folder: str) -> None:
    """A venv at ``folder`` with this checkout of wev and its dependencies, nothing else."""
    if os.path.exists(os.path.join(folder, "bin", "wev-daemon")):
        return
    uv = shutil.which("uv")
    if uv is not None:
        commands = [[uv, "venv", "--quiet", folder]]
        commands.append([uv, "pip", "install", "--quiet", "--python", folder, ROOT])
    else:
        commands = [[sys.executable, "-m", "venv", folder]]
        python = os.path.join(folder, "bin", "python")
        commands.append([python, "-m", "pip", "install", "--quiet", ROOT])
    for command in commands:
        subprocess.run(command, check=True, timeout=VENV_TIMEOUT, stdout=subprocess.DEVNULL)


async def measure(
    path: str,
    message: bytes,
    others: Sequence[bytes],
    expected: dict[str, str],
    requests: int,
    pid: int,
    variables: int,
) -> Figures:
    """Warm up, run every level, top up to RSS_REQUESTS; RSS before and after."""
    errors: Counter[str] = Counter()
    warm = await hammer(path, message, expected, WARM_UP_REQUESTS, max(LEVELS), pid)
    errors.update(warm.errors)
    rss_warm = rss_kib(pid)
    levels = []
    total = 0
    if requests:
        for clients in LEVELS:
            run = await hammer(path, message, expected, requests, clients, pid)
            errors.update(run.errors)
            levels.append(level(clients, run))
        run = await hammer(path, others, expected, requests, max(LEVELS), pid)
        errors.update(run.errors)
        levels.append(level(max(LEVELS), run, distinct=True))
        total = requests * len(levels)
    if total < RSS_REQUESTS:
        run = await hammer(path, message, expected, RSS_REQUESTS - total, max(LEVELS), pid)
        errors.update(run.errors)
        total = RSS_REQUESTS
    return Figures(levels, rss_warm, rss_kib(pid), total, errors, len(message), variables)


def verdicts(dev: Figures, wev_only: Figures | None) -> list[tuple[str, bool, str]]:
    """Each target: what it asks, whether it is met, and the figure."""
    top = next(item for item in dev.levels if item.clients == max(LEVELS) and not item.distinct)
    rss = (wev_only or dev).rss_after_kib / 1024
    where = "a venv with wev alone" if wev_only is not None else "the dev venv"
    return [
        (
            f"{TARGET_REQUESTS_PER_SECOND:,} requests/s or more at {top.clients} clients",
            top.requests_per_second >= TARGET_REQUESTS_PER_SECOND,
            f"{top.requests_per_second:,.0f}/s",
        ),
        (
            f"p99 within {TARGET_P99_OVER_P50:g}x p50 at {top.clients} clients",
            top.p99_ms <= TARGET_P99_OVER_P50 * top.p50_ms,
            f"{top.p99_ms / top.p50_ms:.2f}x",
        ),
        (
            f"RSS under {TARGET_RSS_MIB} MiB ({where})",
            rss < TARGET_RSS_MIB,
            f"{rss:.1f} MiB",
        ),
    ]


def report(dev: Figures, wev_only: Figures | None, upstream_calls: int) -> dict[str, object]:
    def rss(figures: Figures) -> dict[str, int]:
        return {
            "after_warm_up": figures.rss_warm_kib,
            "after": figures.rss_after_kib,
            "requests": figures.requests,
        }

    return {
        "python": sys.version.split()[0],
        "cores": os.cpu_count(),
        "machine": f"{platform.system()} {platform.machine()}",
        "request_bytes": dev.request_bytes,
        "request_variables": dev.request_variables,
        "levels": [asdict(item) for item in dev.levels],
        "rss_kib": rss(dev),
        "rss_kib_wev_only_venv": None if wev_only is None else rss(wev_only),
        "targets": [
            {"target": target, "pass": met, "figure": figure}
            for target, met, figure in verdicts(dev, wev_only)
        ],
        "codeartifact_calls": upstream_calls,
        "errors": dict(dev.errors + (wev_only.errors if wev_only else Counter())),
    }


def print_text(dev: Figures, wev_only: Figures | None, upstream_calls: int) -> None:
    print(
        f"wev-daemon under load: POST {protocol.RESOLVE_ROUTE} as wev sends it "
        f"({dev.request_bytes:,} bytes, {dev.request_variables} variables of environment; "
        f"Connection: close); python {sys.version.split()[0]}, {os.cpu_count()} cores\n"
    )
    print(
        f"{'clients':>16}  {'requests':>8}  {'errors':>6}  {'req/s':>7}  "
        f"{'p50 ms':>7}  {'p99 ms':>7}  {'max ms':>7}  {'daemon CPU/req':>14}"
    )
    for item in dev.levels:
        clients = f"{item.clients}, distinct" if item.distinct else str(item.clients)
        print(
            f"{clients:>16}  {item.requests:>8}  {item.errors:>6}  "
            f"{item.requests_per_second:>7.0f}  {item.p50_ms:>7.2f}  {item.p99_ms:>7.2f}  "
            f"{item.max_ms:>7.2f}  {item.daemon_cpu_us:>11.0f} us"
        )
    for name, figures in (("dev venv", dev), ("venv with wev alone", wev_only)):
        if figures is not None:
            before, after = figures.rss_warm_kib, figures.rss_after_kib
            print(
                f"\ndaemon RSS, {name}: {before / 1024:.1f} MiB after the warm-up, "
                f"{after / 1024:.1f} MiB after {figures.requests} requests "
                f"({after - before:+d} KiB)",
                end="",
            )
    print(f"\nCodeArtifact calls: {upstream_calls}\n")
    for target, met, figure in verdicts(dev, wev_only):
        print(f"target: {target}: {'PASS' if met else 'MISS'} ({figure})")
    for problem, count in (dev.errors + (wev_only.errors if wev_only else Counter())).items():
        print(f"error x{count}: {problem}")


if __name__ == "__main__":
    sys.exit(main())
