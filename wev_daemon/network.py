"""The caller's network: which proxy a request to a URL goes through, which CAs it trusts.

One rule for the whole daemon, for its AWS calls and for the loopback proxy's
forwarded requests alike, and the rule botocore applies in-process (so the
daemon and ``WEV_NO_DAEMON=1`` agree): the caller's ``https_proxy`` /
``HTTPS_PROXY`` (lower case first, as urllib reads them), unless its
``no_proxy`` / ``NO_PROXY`` names the host being called. Never the daemon's
own variables: a daemon started by systemd has none, and one started from a
shell has that shell's, not the caller's.

Standard library only; imported by ``aws_session`` and ``proxy``.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

#: The variables that name the caller's CA bundle, in botocore's order.
CA_BUNDLE_VARS = ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE")


def _variable(env: Mapping[str, str], name: str) -> str:
    """``name`` (lower case) as urllib reads it: set, even empty, it wins over its upper-case
    twin (``http_proxy=`` turns off an exported ``HTTP_PROXY``)."""
    return env[name] if name in env else env.get(name.upper(), "")


def proxies(env: Mapping[str, str]) -> dict[str, str]:
    """The caller's proxy for each scheme ("http", "https") it sets one for."""
    return {
        scheme: value
        for scheme in ("http", "https")
        if (value := _variable(env, f"{scheme}_proxy"))
    }


def bypasses(url: str, env: Mapping[str, str]) -> bool:
    """Whether the caller's ``NO_PROXY`` names the host of ``url`` (a URL or a bare host)."""
    no_proxy = _variable(env, "no_proxy")
    if not no_proxy:
        return False
    netloc = urlsplit(url).netloc if "://" in url else url
    host = netloc.rpartition("@")[2]
    return bool(urllib.request.proxy_bypass_environment(host, {"no": no_proxy}))  # type: ignore[attr-defined]


def proxy_for(url: str, env: Mapping[str, str]) -> str | None:
    """The proxy a request to ``url`` goes through for this caller, or None.

    A proxy written without a scheme (``proxy.corp:3128``) is an HTTP one, as
    botocore and requests read it.
    """
    scheme = url.partition("://")[0].lower() or "https"
    proxy = proxies(env).get(scheme)
    if proxy is None or bypasses(url, env):
        return None
    return proxy if "://" in proxy else "http://" + proxy


def ca_bundle(env: Mapping[str, str], configured: str | None = None) -> str | None:
    """The CA bundle the caller trusts, if it names one; None: the default CAs.

    botocore's order: ``AWS_CA_BUNDLE``, then the AWS profile's ``ca_bundle``
    (``configured``, as the caller's session reads it), then ``REQUESTS_CA_BUNDLE``.
    """
    first, last = CA_BUNDLE_VARS
    return env.get(first) or configured or env.get(last) or None
