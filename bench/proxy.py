"""Throughput of the loopback proxy (``proxy: true``) against the same index reached directly.

Run ``.venv/bin/python bench/proxy.py [--rounds N] [--json]`` (about a minute with the defaults).
It starts the tests' fake CodeArtifact and PyPI index on 127.0.0.1, a real ``wev-daemon`` on a
free proxy port, and a project whose ``wev.yml`` has the index twice: once as the direct index
URL with the token (``index_url``), once through the proxy. Then, interleaved, round after round:

* ``pip download`` of one 50 MB wheel (incompressible), a fresh pip process each time, no cache;
* 200 small index pages (``/simple/<project>/``) fetched one after another on one keep-alive
  connection, as pip's session does.

Both run in two modes of the index: ``streamed``, where the index serves the file itself (so the
proxy carries all 50 MB), and ``redirected``, the CodeArtifact shape, where the page links back
to the index and the download answers 302 to a second host (the proxy passes the redirect and
the bytes bypass it). It prints the medians and the ratio proxy / direct for each.

Then memory: ``npm install`` of 15 packages whose packuments are 20 MB each (a big readme and
200 versions, whose tarball URLs the proxy rewrites), all through the proxy, from the fake
registry in CodeArtifact's shape; it prints the daemon's peak RSS (``VmHWM``) before and after,
against the target of 150 MiB.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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
def daemon(env: dict[str, str], socket_path: str, log: Path) -> Iterator[int]:
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "wev-daemon"), "--socket", socket_path, "--log-level", "WARNING"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(socket_path):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"wev-daemon did not start: {log.read_text()}")
            time.sleep(0.02)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
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


def pip_download(index_url: str, into: Path, env: dict[str, str]) -> float:
    shutil.rmtree(into, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [
            *(str(BIN / "pip"), "download", "--no-deps", "--no-cache-dir", "--quiet"),
            *("--disable-pip-version-check", "--index-url", index_url, "-d", str(into)),
            "corp-big",
        ],
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
        check=True,
    )
    elapsed = time.perf_counter() - started
    assert (into / "corp_big-1.0-py3-none-any.whl").stat().st_size > BIG_MB * 1024 * 1024
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-npm", action="store_true", help="no memory figure (no npm here)")
    args = parser.parse_args(argv)
    memory: dict[str, float] = {}

    root = Path(tempfile.mkdtemp(prefix="wev-bench-proxy-"))
    results: dict[str, dict[str, float]] = {}
    try:
        wheels = root / "wheels"
        big_wheel(wheels)
        projects = [f"corp-small-{i:03d}" for i in range(PAGES)]
        for name in projects:
            build_wheel(wheels, name, "1.0")
        home, project, runtime = root / "home", root / "project", root / "run"
        for folder in (home / ".aws", project):
            folder.mkdir(parents=True)
        runtime.mkdir(mode=0o700)
        (project / "wev.yml").write_text(WEV_YML)
        (home / ".aws" / "credentials").write_text(
            f"[default]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n"
        )
        (home / ".aws" / "config").write_text("[default]\nregion = eu-west-1\n")
        base_env = {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_STATE_HOME": str(root / "state"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1",
        }
        for mode in ("streamed", "redirected"):
            with ExitStack() as stack:
                fake = stack.enter_context(FakeCodeArtifact({KEY: SECRET}))
                index = stack.enter_context(
                    FakePyPIIndex(wheels, fake, like_codeartifact=mode == "redirected")
                )
                fake.repository_base_url = index.url
                env = {
                    **base_env,
                    "AWS_ENDPOINT_URL_CODEARTIFACT": fake.url,
                    "WEV_PROXY_PORT": str(free_port()),
                    "PIP_CONFIG_FILE": os.devnull,
                    "PIP_NO_INPUT": "1",
                }
                socket_path = str(runtime / f"{mode}.sock")
                env["WEV_SOCKET"] = socket_path
                stack.enter_context(daemon(env, socket_path, root / f"{mode}.log"))
                index_urls = urls(env, project)
                times: dict[str, list[float]] = {}
                fetch_pages(index_urls["proxy"], projects[:5])  # warm both paths
                fetch_pages(index_urls["direct"], projects[:5])
                for _ in range(args.rounds):
                    for way, url in index_urls.items():
                        into = root / f"download-{way}"
                        times.setdefault(f"pip download {BIG_MB} MB, {way}", []).append(
                            pip_download(url, into, env)
                        )
                        times.setdefault(f"{PAGES} pages, {way}", []).append(
                            fetch_pages(url, projects)
                        )
                results[mode] = {name: statistics.median(values) for name, values in times.items()}
        if not args.skip_npm:
            memory = npm_memory(root, base_env)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    ratios = {
        mode: {
            "pip download": figures[f"pip download {BIG_MB} MB, proxy"]
            / figures[f"pip download {BIG_MB} MB, direct"],
            "pages": figures[f"{PAGES} pages, proxy"] / figures[f"{PAGES} pages, direct"],
        }
        for mode, figures in results.items()
    }
    if args.json:
        document = {"medians_seconds": results, "ratios": ratios, "rounds": args.rounds}
        print(json.dumps({**document, "npm_memory": memory}))
        return 0
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores, {args.rounds} rounds, medians"
    )
    print("| index | what | direct | through the proxy | proxy / direct |")
    print("|---|---|---|---|---|")
    for mode, figures in results.items():
        for what, label in (("pip download", f"pip download {BIG_MB} MB"), ("pages", "pages")):
            name = label if what == "pip download" else f"{PAGES} pages"
            direct, proxied = figures[f"{name}, direct"], figures[f"{name}, proxy"]
            print(
                f"| {mode} | {name} | {direct * 1000:.0f} ms | {proxied * 1000:.0f} ms | "
                f"{ratios[mode][what]:.2f}x |"
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
