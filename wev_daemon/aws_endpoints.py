"""botocore's endpoint table, read once and cut to the services wev calls.

botocore reads its whole endpoint table (``endpoints.json``: 1.2 MB, 7 MiB of
objects, about 14 ms) into every new session, so into every fetch, for the
few services a fetch calls; what it leaves behind after the fetch kept the
daemon's memory 4 MiB higher. The daemon reads it once, keeps every
partition (its regions and defaults, which any endpoint needs) with the
entries of ``SERVICES`` only, and lets every session share that table.

A session that calls another service (another's plugin) gets botocore's
whole table, and so does one whose loader would read a table of the
caller's own (``AWS_DATA_PATH``, ``~/.aws/models``): endpoints resolve as
botocore alone would resolve them.
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

from botocore.regions import EndpointResolver

#: The services wev's plugins call (CodeArtifact, ECR, IAM and STS for MFA) and
#: those botocore's credential chain calls (STS, IAM Identity Center, ``aws login``).
SERVICES = frozenset(
    {"codeartifact", "ecr", "ecr-public", "iam", "sts", "sso", "sso-oidc", "signin"}
)

_shared: EndpointResolver | None = None


def resolver_for(loader: Any) -> EndpointResolver:  # botocore's Loader is untyped
    """The endpoint resolver for a session with ``loader``: the shared one when it
    would read botocore's own table, else botocore's whole table, read as botocore does."""
    global _shared
    found = next(
        (
            path
            for path in (os.path.join(folder, "endpoints") for folder in loader.search_paths)
            if loader.file_loader.exists(path)
        ),
        None,
    )
    if found is None or not loader.is_builtin_path(found):
        table, path = loader.load_data_with_path("endpoints")
        return EndpointResolver(table, uses_builtin_data=loader.is_builtin_path(path))
    if _shared is None:
        _shared = EndpointResolver(_read_cut(found), uses_builtin_data=True)
    return _shared


def _read_cut(path: str) -> dict[str, Any]:
    """The table at ``path`` (``.json``, else ``.json.gz``, as botocore reads it) with
    only the entries of ``SERVICES`` in each partition."""
    if os.path.isfile(path + ".json"):
        with open(path + ".json", "rb") as file:
            table = json.load(file)  # plain dicts: botocore's OrderedDicts leave more behind
    else:
        with gzip.open(path + ".json.gz") as file:
            table = json.load(file)
    table["partitions"] = [
        {**partition, "services": _kept(partition["services"])} for partition in table["partitions"]
    ]
    # Made again once the whole table is freed: the kept entries would
    # otherwise stay scattered among its freed objects and hold their memory.
    text = json.dumps(table)
    del table
    return json.loads(text)  # type: ignore[no-any-return]


def _kept(services: dict[str, Any]) -> dict[str, Any]:
    return {name: services[name] for name in SERVICES if name in services}
