"""Throughput of the loopback proxy (``proxy: true``) against the same index reached directly.

Run ``.venv/bin/python bench/proxy.py [--rounds N] [--json]`` (about three minutes with the
defaults). It starts the tests' fake CodeArtifact and PyPI index on 127.0.0.1, a real
``wev-daemon`` on a free proxy port, and a project whose ``wev.yml`` has the index twice: once
as the direct index URL with the token (``index_url``), once through the proxy. Then, round
after round:

* ``pip download`` of one 50 MB wheel (incompressible), a fresh pip process each time, no cache;
* pip's 200 index pages: one fresh pip process, without cache, downloads 200 small projects
  (``pip download --no-deps``), so it reads 200 index pages and fetches 200 small wheels on
  its keep-alive session: what a user waits for;
* the same 200 pages fetched by a bare ``http.client`` loop on one keep-alive connection: the
  strictest figure, since nothing but the fake index's own work hides the proxy's.

Each is measured both ways side by side, the order swapped every round; besides the medians,
the bench prints the median and range of the per-round ratios (each a pair run back to back,
so load that comes and goes on a shared machine weighs on both), and the daemon's CPU time per
request it forwarded, in the bare loop and in pip's run (``/proc/PID/task/*/schedstat``).

All run in two modes of the index: ``streamed``, where the index serves the file itself (so the
proxy carries all 50 MB), and ``redirected``, the CodeArtifact shape, where the page links back
to the index and the download answers 302 to a second host (the proxy passes the redirect and
the bytes bypass it).

Then memory: ``npm install`` of 15 packages whose packuments are 20 MB each (a big readme and
200 versions, whose tarball URLs the proxy rewrites), all through the proxy, from the fake
registry in CodeArtifact's shape; it prints the daemon's peak RSS (``VmHWM``) before and after,
against the target of 150 MiB.

``--instructions`` prints instead what one page of the bare loop costs the daemon in
instructions (``valgrind --tool=callgrind`` on the daemon, counted over the loop alone): a
figure that load does not move, for weighing a change to the proxy (Debian's ``valgrind``).

It is longer than a module should be: a bench is one script that a checkout runs as it is,
with every figure of the proxy side by side in one run.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))  # the fakes

from fakes.codeartifact import FakeCodeArtifact  # type: ignore[import-not-found,unused-ignore]  # noqa: E402
from fakes.npm_registry import FakeNpmRegistry, build_package  # type: ignore[import-not-found,unused-ignore]  # noqa: E402
from fakes.pypi_index import FakePyPIIndex  # type: ignore[import-not-found,unused-ignore]  # noqa: E402
from fakes.wheels import build_wheel  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

BIN = Path(sys.executable).parent
KEY, SECRET = "AKIABENCHPROXY000001", "bench-secret-key-000000000000000000000000"
BIG_MB = 50
PAGES = 200
#: What is measured, by its short name: how the table names it.
WHATS = {
    "big": f"pip download of a {BIG_MB} MB wheel",
    "pip": f"pip's {PAGES} index pages (pip download of {PAGES} small projects)",
    "loop": f"{PAGES} index pages, bare http.client loop",
}
#: The requests through the proxy: a page each in the loop; in pip's run a page and a
#: download (streamed) or its redirect (redirected) for each project.
REQUESTS = {"pip": 2 * PAGES, "loop": PAGES}
NPM_PACKAGES = 15
PACKUMENT_MB = 20
NPM_VERSIONS = 200
RSS_TARGET_MIB = 150
TIMEOUT = 300.0
WEV_YML = """\
DIRECT_INDEX_URL:
  plugin:
    id: wev-awscodeartifact
    domain: corp
    repository: shared
    format: pypi
    values: [index_url]
PROXY_INDEX_URL:
  plugin:
    id: wev-awscodeartifact
    domain: corp
    repository: shared
    format: pypi
    proxy: true
"""
NPM_WEV_YML = """\
NPM_CONFIG_REGISTRY:
  plugin:
    id: wev-awscodeartifact
    domain: corp
    repository: shared
    format: npm
    proxy: true
"""


def big_wheel(folder: Path) -> Path:
    """A valid wheel of ``BIG_MB`` MB of random bytes, stored uncompressed."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "corp_big-1.0-py3-none-any.whl"
    info = "corp_big-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: corp-big\nVersion: 1.0\n"
        )
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
        archive.writestr("corp_big/data.bin", os.urandom(BIG_MB * 1024 * 1024))
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def daemon(
    env: dict[str, str], socket_path: str, log: Path, wrapper: Sequence[str] = ()
) -> Iterator[int]:
    """A ``wev-daemon`` on ``socket_path`` (run by ``wrapper``, if any); its pid."""
    with log.open("w") as out:
        command = [str(BIN / "python"), str(BIN / "wev-daemon"), "--socket", socket_path]
        process = subprocess.Popen(
            [*wrapper, *command, "--log-level", "WARNING"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + (600 if wrapper else 10)
        while not os.path.exists(socket_path):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"wev-daemon did not start: {log.read_text()}")
            time.sleep(0.02)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(120 if wrapper else 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def urls(env: dict[str, str], project: Path) -> dict[str, str]:
    printed = subprocess.run(
        [str(BIN / "wev"), "--export", "--format", "json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    values = json.loads(printed.stdout)
    return {"direct": values["DIRECT_INDEX_URL"], "proxy": values["PROXY_INDEX_URL"]}


def pip_download(index_url: str, requirements: list[str], into: Path, env: dict[str, str]) -> float:
    """Seconds for a fresh pip, without cache, to download ``requirements`` into ``into``."""
    shutil.rmtree(into, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [
            *(str(BIN / "pip"), "download", "--no-deps", "--no-cache-dir", "--quiet"),
            *("--disable-pip-version-check", "--index-url", index_url, "-d", str(into)),
            *requirements,
        ],
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    elapsed = time.perf_counter() - started
    assert len(list(into.glob("*.whl"))) == len(requirements)
    return elapsed


def fetch_pages(index_url: str, projects: list[str]) -> float:
    """Seconds for one page per project, one after another on one keep-alive connection."""
    parts = urlsplit(index_url)
    headers = {"Accept": "text/html"}
    if parts.username:
        pair = f"{parts.username}:{parts.password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
    started = time.perf_counter()
    try:
        for project in projects:
            connection.request("GET", f"{parts.path}{project}/", headers=headers)
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200 and b"<a href" in body, response.status
    finally:
        connection.close()
    return time.perf_counter() - started


@dataclass
class Rounds:
    """What each figure took, by ``"<what>, <way>"``, round after round."""

    #: Wall-clock seconds: what a user waits for.
    wall: dict[str, list[float]] = field(default_factory=dict)
    #: The daemon's CPU seconds per request it forwarded, by what was measured.
    daemon: dict[str, list[float]] = field(default_factory=dict)


def cpu_seconds(pid: int) -> float:
    """The CPU time the process has used so far, all its threads (``schedstat``, in ns)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return total / 1e9


class Bench:
    """The wheels, the project and the environment shared by every mode of the index."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.wheels = root / "wheels"
        big_wheel(self.wheels)
        self.projects = [f"corp-small-{i:03d}" for i in range(PAGES)]
        for name in self.projects:
            build_wheel(self.wheels, name, "1.0")
        home, self.project, self.runtime = root / "home", root / "project", root / "run"
        for folder in (home / ".aws", self.project):
            folder.mkdir(parents=True)
        self.runtime.mkdir(mode=0o700)
        (self.project / "wev.yml").write_text(WEV_YML)
        (home / ".aws" / "credentials").write_text(
            f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
        )
        (home / ".aws" / "config").write_text("[default]\nregion = eu-west-1\n")
        self.env = {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "XDG_RUNTIME_DIR": str(self.runtime),
            "XDG_STATE_HOME": str(root / "state"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1",
        }

    @contextmanager
    def index(
        self, mode: str, wrapper: Sequence[str] = ()
    ) -> Iterator[tuple[dict[str, str], dict[str, str], int]]:
        """The index in ``mode`` and a daemon: the environment, the index URLs by way, the pid."""
        with ExitStack() as stack:
            fake = stack.enter_context(FakeCodeArtifact({KEY: SECRET}))
            index = stack.enter_context(
                FakePyPIIndex(self.wheels, fake, like_codeartifact=mode == "redirected")
            )
            fake.repository_base_url = index.url
            socket_path = str(self.runtime / f"{mode}.sock")
            env = {
                **self.env,
                "AWS_ENDPOINT_URL_CODEARTIFACT": fake.url,
                "WEV_PROXY_PORT": str(free_port()),
                "WEV_SOCKET": socket_path,
                "PIP_CONFIG_FILE": os.devnull,
                "PIP_NO_INPUT": "1",
            }
            log = self.root / f"{mode}.log"
            pid = stack.enter_context(daemon(env, socket_path, log, wrapper))
            yield env, urls(env, self.project), pid

    def measure(self, mode: str, rounds: int) -> Rounds:
        """Each figure's seconds per way and round, and the daemon's CPU seconds per page."""
        measured = Rounds()
        with self.index(mode) as (env, index_urls, pid):
            for url in index_urls.values():  # warm both ways, and pip's own files
                fetch_pages(url, self.projects[:5])
                pip_download(url, self.projects[:5], self.root / "warm", env)
            runs: dict[str, Callable[[str, str], float]] = {
                "big": lambda way, url: pip_download(
                    url, ["corp-big"], self.root / f"download-{way}", env
                ),
                "pip": lambda way, url: pip_download(
                    url, self.projects, self.root / f"download-{way}", env
                ),
                "loop": lambda _, url: fetch_pages(url, self.projects),
            }
            for round_number in range(rounds):
                ways = list(index_urls.items())
                for what, run in runs.items():
                    for way, url in ways[::-1] if round_number % 2 else ways:
                        before = cpu_seconds(pid)
                        measured.wall.setdefault(f"{what}, {way}", []).append(run(way, url))
                        if what in REQUESTS and way == "proxy":
                            spent = (cpu_seconds(pid) - before) / REQUESTS[what]
                            measured.daemon.setdefault(what, []).append(spent)
        return measured

    def instructions_per_page(self) -> float:
        """What one page of the bare loop costs the daemon, counted by callgrind."""
        out = self.root / "callgrind.out"
        wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p"]
        with self.index("redirected", wrapper) as (_, index_urls, pid):
            fetch_pages(index_urls["proxy"], self.projects[:40])  # warm: pools, caches
            control = ["callgrind_control", str(pid)]
            subprocess.run([*control, "--zero"], check=True, capture_output=True, timeout=60)
            fetch_pages(index_urls["proxy"], self.projects)
            subprocess.run([*control, "--dump=loop"], check=True, capture_output=True, timeout=60)
        for dump in self.root.glob("callgrind.out.*"):
            text = dump.read_text(errors="replace")
            if "\ndesc: Trigger: dump loop\n" in text:
                match = re.search(r"^summary: (\d+)$", text, re.MULTILINE)
                assert match is not None, dump
                return int(match.group(1)) / PAGES
        raise RuntimeError("callgrind wrote no dump of the loop")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/PID/status")


def npm_memory(root: Path, base_env: dict[str, str]) -> dict[str, float]:
    """The daemon's peak RSS before and after npm installs the big packuments through it."""
    project = root / "npm-project"
    project.mkdir()
    (project / "wev.yml").write_text(NPM_WEV_YML)
    names = [f"corp-pkg-{i:02d}" for i in range(NPM_PACKAGES)]
    dependencies = ", ".join(f'"{name}": "1.0.{NPM_VERSIONS - 1}"' for name in names)
    (project / "package.json").write_text(
        f'{{"name": "app", "version": "1.0.0", "private": true, '
        f'"dependencies": {{{dependencies}}}}}\n'
    )
    with ExitStack() as stack:
        fake = stack.enter_context(FakeCodeArtifact({KEY: SECRET}))
        registry = stack.enter_context(
            FakeNpmRegistry(fake, like_codeartifact=True, readme_bytes=PACKUMENT_MB * 1000 * 1000)
        )
        for name in names:
            for version in range(NPM_VERSIONS):
                main = f"module.exports = {version};\n"
                registry.add(build_package(name, f"1.0.{version}", main))
        fake.repository_base_url = registry.url
        port = free_port()
        socket_path = str(root / "run" / "npm.sock")
        env = {
            **base_env,
            "AWS_ENDPOINT_URL_CODEARTIFACT": fake.url,
            "WEV_PROXY_PORT": str(port),
            "WEV_SOCKET": socket_path,
        }
        pid = stack.enter_context(daemon(env, socket_path, root / "npm.log"))
        subprocess.run([str(BIN / "wev"), "true"], cwd=project, env=env, check=True, timeout=60)
        before = peak_rss_mib(pid)
        (project / ".npmrc").write_text(f"registry=http://127.0.0.1:{port}/corp/shared/npm/\n")
        started = time.perf_counter()
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefer-online"],
            cwd=project,
            env={**env, "npm_config_cache": str(root / "npm-cache")},
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
        )
        elapsed = time.perf_counter() - started
        assert (project / "node_modules" / names[-1] / "index.js").exists()
        return {"before_mib": before, "peak_mib": peak_rss_mib(pid), "npm_seconds": elapsed}


def spread(times: Mapping[str, list[float]], what: str) -> tuple[float, float, float]:
    """The median, lowest and highest ratio proxy / direct over the rounds' pairs."""
    pairs = zip(times[f"{what}, proxy"], times[f"{what}, direct"], strict=True)
    ratios = sorted(proxied / direct for proxied, direct in pairs)
    return statistics.median(ratios), ratios[0], ratios[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-npm", action="store_true", help="no memory figure (no npm here)")
    parser.add_argument(
        "--instructions", action="store_true", help="only the instructions per page (callgrind)"
    )
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="wev-bench-proxy-"))
    memory: dict[str, float] = {}
    medians: dict[str, dict[str, float]] = {}
    spreads: dict[str, dict[str, tuple[float, float, float]]] = {}
    cpu_per_request: dict[str, dict[str, float]] = {}
    try:
        bench = Bench(root)
        if args.instructions:
            print(f"daemon instructions per proxied page: {bench.instructions_per_page():,.0f}")
            return 0
        for mode in ("streamed", "redirected"):
            measured = bench.measure(mode, args.rounds)
            medians[mode] = {
                name: statistics.median(value) for name, value in measured.wall.items()
            }
            spreads[mode] = {what: spread(measured.wall, what) for what in WHATS}
            cpu_per_request[mode] = {
                what: statistics.median(seconds) for what, seconds in measured.daemon.items()
            }
        if not args.skip_npm:
            memory = npm_memory(root, bench.env)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    if args.json:
        document = {
            "medians_seconds": medians,
            "round_ratios_median_min_max": spreads,
            "daemon_cpu_seconds_per_request": cpu_per_request,
            "rounds": args.rounds,
            "npm_memory": memory,
        }
        print(json.dumps(document))
        return 0
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {args.rounds} rounds, medians"
    )
    print("| index | what | direct | through the proxy | proxy / direct, per round (range) |")
    print("|---|---|---|---|---|")
    for mode, figures in medians.items():
        for what, name in WHATS.items():
            direct, proxied = figures[f"{what}, direct"], figures[f"{what}, proxy"]
            middle, low, high = spreads[mode][what]
            print(
                f"| {mode} | {name} | {direct * 1000:.0f} ms | {proxied * 1000:.0f} ms | "
                f"{middle:.2f}x ({low:.2f}-{high:.2f}) |"
            )
    for mode, seconds in cpu_per_request.items():
        print(
            f"daemon CPU per proxied request ({mode}): {seconds['loop'] * 1e6:.0f} us in the bare "
            f"loop, {seconds['pip'] * 1e6:.0f} us in pip's run"
        )
    if memory:
        print(
            f"npm install of {NPM_PACKAGES} packages with {PACKUMENT_MB} MB packuments through "
            f"the proxy ({memory['npm_seconds']:.1f} s): daemon peak RSS "
            f"{memory['before_mib']:.0f} MiB before, {memory['peak_mib']:.0f} MiB after "
            f"(target: under {RSS_TARGET_MIB} MiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
