"""One endpoint table for every session: endpoints as botocore resolves them, less memory."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import pytest
from aiobotocore.session import AioSession
from botocore.loaders import create_loader
from botocore.regions import EndpointResolver
from conftest import Daemon, User
from fakes.codeartifact import FakeCodeArtifact
from wire import rss_kib

from wev_daemon import aws_endpoints
from wev_daemon.aws_session import Caller, CallerSession

#: Measured here: a first fetch grew the daemon by 7.5 to 8.4 MiB while each session read
#: botocore's whole table; 4.2 MiB with the shared one.
FIRST_FETCH_GROWTH_LIMIT_KIB = 6 * 1024


def whole_table() -> EndpointResolver:
    table = create_loader().load_data("endpoints")
    return EndpointResolver(table, uses_builtin_data=True)


def outcome(resolver: EndpointResolver, *asked: object) -> object:
    """What ``construct_endpoint`` answers, or the error it raises."""
    try:
        return resolver.construct_endpoint(*asked)
    except Exception as error:  # compared, never hidden
        return type(error), str(error)


def regions(session: CallerSession | AioSession, service: str) -> list[str]:
    found = asyncio.run(session.get_available_regions(service, allow_non_regional=True))
    assert isinstance(found, list)
    return found


def session(home: Path, **env: str) -> CallerSession:
    return CallerSession(Caller({"HOME": str(home), **env}, {"PATH": "/usr/bin:/bin"}, "/"))


def shared_table(home: Path) -> EndpointResolver:
    resolver = session(home)._get_internal_component("endpoint_resolver")
    assert isinstance(resolver, EndpointResolver)
    return resolver


def test_every_endpoint_of_wevs_services_resolves_as_with_the_whole_table(
    tmp_path: Path,
) -> None:
    whole, shared = whole_table(), shared_table(tmp_path)
    assert shared is shared_table(tmp_path), "one table for every session"
    partitions = whole.get_available_partitions()
    assert shared.get_available_partitions() == partitions
    checked = 0
    for partition, service in itertools.product(partitions, sorted(aws_endpoints.SERVICES)):
        regions = whole.get_available_endpoints(service, partition, allow_non_regional=True)
        assert shared.get_available_endpoints(service, partition, True) == regions
        # Every listed region, one of the partition's that lists no endpoint, and none.
        for region in [*regions, f"{partition}-nowhere-1", None]:
            for fips, dualstack in itertools.product((False, True), repeat=2):
                asked = (service, region, partition, dualstack, fips)
                assert outcome(shared, *asked) == outcome(whole, *asked)
                checked += 1
    assert checked > 500


def test_a_service_outside_the_shared_table_gets_the_whole_one(tmp_path: Path) -> None:
    """Another's plugin calling, say, Secrets Manager sees botocore's own answers."""
    mine = session(tmp_path)
    assert regions(mine, "secretsmanager") == regions(AioSession(), "secretsmanager")
    assert "eu-west-1" in regions(mine, "secretsmanager")

    async def endpoint(session: CallerSession | AioSession) -> str:
        async with session.create_client("secretsmanager", region_name="cn-north-1") as client:
            return str(client.meta.endpoint_url)

    assert asyncio.run(endpoint(session(tmp_path))) == asyncio.run(endpoint(AioSession()))


@pytest.mark.parametrize("where", ["AWS_DATA_PATH", "profile's data_path"])
def test_a_table_of_the_callers_own_is_used(tmp_path: Path, where: str) -> None:
    table = whole_table()._endpoint_data
    aws = next(p for p in table["partitions"] if p["partition"] == "aws")
    aws["services"]["codeartifact"]["endpoints"]["xx-test-1"] = {}
    models = tmp_path / "models"
    models.mkdir()
    (models / "endpoints.json").write_text(json.dumps(table))
    if where == "AWS_DATA_PATH":
        mine = session(tmp_path, AWS_DATA_PATH=str(models))
    else:
        (tmp_path / "config").write_text(f"[default]\ndata_path = {models}\n")
        mine = session(tmp_path, AWS_CONFIG_FILE=str(tmp_path / "config"))

    assert "xx-test-1" in regions(mine, "codeartifact")
    assert "xx-test-1" not in regions(session(tmp_path), "codeartifact")


def test_a_fetch_leaves_the_daemon_little_more_memory(
    user: User, daemon: Daemon, fake: FakeCodeArtifact
) -> None:
    user.write(
        "work/project/wev.yml",
        "CODEARTIFACT_AUTH_TOKEN:\n  plugin:\n    id: wev-awscodeartifact\n    domain: corp\n",
    )
    idle = rss_kib(daemon.process.pid)
    fetched = user.wev("true")
    assert fetched.returncode == 0, fetched.stderr
    assert fake.call_count == 1
    assert rss_kib(daemon.process.pid) - idle < FIRST_FETCH_GROWTH_LIMIT_KIB
