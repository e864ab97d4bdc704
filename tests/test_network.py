"""The caller's network: AWS calls made for a caller go through its proxy, or none.

A daemon started from a shell with proxy variables serves callers without any; a caller's
proxy carries its calls (a recording forward proxy shows it) unless its ``NO_PROXY`` names the
host actually called, AWS's own default endpoint included; its ``REQUESTS_CA_BUNDLE`` is
trusted. The daemon and ``WEV_NO_DAEMON=1`` agree in every case.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Daemon, User
from fakes.codeartifact import FakeCodeArtifact
from fakes.container import FakeContainerCredentials
from fakes.http_proxy import FakeHttpProxy

from wev_daemon import network

CODEARTIFACT = "CODEARTIFACT_AUTH_TOKEN: {plugin: {id: wev-awscodeartifact, domain: corp}}\n"
PRINT_TOKEN = ("printenv", "CODEARTIFACT_AUTH_TOKEN")
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens
MODES = pytest.mark.parametrize("extra", [{}, {"WEV_NO_DAEMON": "1"}], ids=["daemon", "in-process"])


def proxy_vars(url: str) -> dict[str, str]:
    return {name: url for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")}


def test_a_daemon_started_behind_a_proxy_serves_a_caller_without_one(
    user: User, fake: FakeCodeArtifact
) -> None:
    user.write("work/project/wev.yml", CODEARTIFACT)
    daemon = Daemon(user, env=proxy_vars(DEAD_PROXY))
    try:
        result = user.wev(*PRINT_TOKEN)
    finally:
        daemon.stop()

    assert result.returncode == 0, result.stderr
    assert fake.is_valid_token(result.stdout.strip())


@pytest.fixture
def corporate_proxy() -> Iterator[FakeHttpProxy]:
    with FakeHttpProxy() as proxy:
        yield proxy


@MODES
def test_the_callers_proxy_carries_its_calls_unless_no_proxy_names_the_host(
    user: User,
    daemon: Daemon,
    fake: FakeCodeArtifact,
    corporate_proxy: FakeHttpProxy,
    extra: dict[str, str],
) -> None:
    user.write("work/project/wev.yml", CODEARTIFACT)
    proxied = {**proxy_vars(corporate_proxy.url), **extra}

    through = user.wev(*PRINT_TOKEN, env=proxied)
    direct = user.wev(*PRINT_TOKEN, env={**proxied, "AWS_REGION": "eu-central-1"} | no_proxy())
    refused = user.wev(*PRINT_TOKEN, env={**proxy_vars(DEAD_PROXY), **extra, "AWS_REGION": "x-1"})

    assert through.returncode == direct.returncode == 0, through.stderr + direct.stderr
    assert [target.split("?")[0] for target in corporate_proxy.targets] == [
        f"{fake.url}/v1/authorization-token"
    ]
    assert refused.returncode != 0 and "cannot reach AWS" in refused.stderr, refused.stderr
    assert [call.region for call in fake.calls] == ["eu-west-1", "eu-central-1"]


def no_proxy() -> dict[str, str]:
    return {"NO_PROXY": "localhost,127.0.0.1"}


def test_no_proxy_is_judged_against_the_host_called() -> None:
    env = {"HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": ".amazonaws.com"}
    aws = "https://codeartifact.eu-west-1.amazonaws.com/v1/authorization-token"

    assert network.proxy_for(aws, env) is None
    assert network.proxy_for("https://example.org/", env) == "http://proxy.corp:3128"
    assert network.proxy_for(aws, {"https_proxy": "http://p:1", "HTTPS_PROXY": "x"}) == "http://p:1"
    assert network.proxy_for(aws, {}) is None


@pytest.mark.parametrize(
    "env",
    [
        {"http_proxy": "", "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"},
        {"https_proxy": "", "HTTPS_PROXY": "http://127.0.0.1:9"},
        {"no_proxy": "", "NO_PROXY": "example.org", "HTTPS_PROXY": "http://127.0.0.1:9"},
        {"no_proxy": "example.org", "NO_PROXY": "", "https_proxy": "http://127.0.0.1:9"},
        {"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "example.org"},
    ],
)
def test_the_proxy_is_the_one_urllib_and_so_botocore_take(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty lower-case variable wins over its upper-case twin, as urllib reads them."""
    for name in [name for name in os.environ if name.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for url in ("https://example.org/", "https://codeartifact.eu-west-1.amazonaws.com/"):
        host = url.split("/")[2]
        expected = None
        if not urllib.request.proxy_bypass_environment(host):  # type: ignore[attr-defined]
            expected = urllib.request.getproxies_environment().get("https")
        assert network.proxy_for(url, env) == expected, url


def why_no_private_network() -> str | None:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return "needs Linux's unshare"
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "--net", "true"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return "user, mount and network namespaces are not allowed here" if probe.returncode else None


def test_no_proxy_reaches_awss_own_endpoint_directly() -> None:
    """The Done-when case: NO_PROXY=.amazonaws.com, AWS's default endpoint, a dead proxy."""
    if reason := why_no_private_network():
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="wev-net-"))
    try:
        result = subprocess.run(
            [
                "unshare",
                "--user",
                "--map-root-user",
                "--mount",
                "--net",
                sys.executable,
                str(Path(__file__).with_name("private_network.py")),
                str(root),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    assert result.returncode == 0, result.stdout + result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    for mode in ("daemon", "in-process"):
        direct = outcome[f"{mode} no_proxy"]
        assert (direct["status"], direct["issued"]) == (0, True), direct["stderr"]
        through_dead_proxy = outcome[mode]
        assert through_dead_proxy["status"] != 0
        assert "cannot reach AWS" in through_dead_proxy["stderr"]
    assert outcome["regions"] == ["eu-west-1"]


@MODES
def test_instance_metadata_is_asked_through_the_callers_proxy_too(
    user: User,
    daemon: Daemon,
    fake: FakeCodeArtifact,
    corporate_proxy: FakeHttpProxy,
    extra: dict[str, str],
) -> None:
    """As botocore does in-process: IMDS goes through HTTP_PROXY unless NO_PROXY names it."""
    (user.home / ".aws" / "credentials").write_text("")
    user.write("work/project/wev.yml", CODEARTIFACT)
    with FakeContainerCredentials("unused") as metadata:
        result = user.wev(
            *PRINT_TOKEN,
            env={
                "AWS_EC2_METADATA_DISABLED": "false",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": metadata.url,
                **proxy_vars(corporate_proxy.url),
                **extra,
            },
        )
        asked = metadata.requests

    assert result.returncode != 0  # the stand-in has no role: no credentials
    assert asked
    assert corporate_proxy.targets
    assert all(target.startswith(metadata.url + "/latest/") for target in corporate_proxy.targets)
