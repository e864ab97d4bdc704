"""Ask AWS's own CodeArtifact host, in a private network where that host is this machine.

``tests/test_network.py`` runs this file under ``unshare --user --map-root-user --mount
--net``: a network namespace with only a loopback interface (nothing leaves it) and a mount
namespace whose ``/etc/hosts`` (a bind mount, seen by nothing outside) makes
``codeartifact.eu-west-1.amazonaws.com`` 127.0.0.1. The fake CodeArtifact answers there on
port 443 with a certificate of a CA made for the run, which the caller trusts through
``REQUESTS_CA_BUNDLE``. No ``AWS_ENDPOINT_URL_*`` is set: botocore computes AWS's default
endpoint, as for a real user.

``python private_network.py ROOT`` prints one JSON object: for each case (through the daemon
and in-process, with and without ``NO_PROXY``), wev's exit status, output and whether the
token it printed is one the fake issued.
"""

from __future__ import annotations

import fcntl
import json
import socket
import struct
import subprocess
import sys
from pathlib import Path

from conftest import CREDENTIALS, Daemon, User
from fakes import tls
from fakes.codeartifact import FakeCodeArtifact

HOSTNAME = "codeartifact.eu-west-1.amazonaws.com"
DEAD_PROXY = "http://127.0.0.1:9"
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    """``ip link set lo up``, without needing iproute2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(probe, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(probe, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def main(root: Path) -> None:
    loopback_up()
    hosts = root / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {HOSTNAME}\n")
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True, timeout=10)
    certificates = tls.issue(root, HOSTNAME)
    results: dict[str, object] = {}
    with FakeCodeArtifact(CREDENTIALS, port=443, tls=certificates.server) as fake:
        user = User(root / "user", fake.url)
        del user.env["AWS_ENDPOINT_URL_CODEARTIFACT"]  # AWS's own endpoint, as botocore makes it
        user.env.update(REQUESTS_CA_BUNDLE=str(certificates.ca_file), HTTPS_PROXY=DEAD_PROXY)
        user.write(
            "work/project/wev.yml",
            "CODEARTIFACT_AUTH_TOKEN: {plugin: {id: wev-awscodeartifact, domain: corp}}\n",
        )
        daemon = Daemon(user)
        try:
            for mode, extra in (("daemon", {}), ("in-process", {"WEV_NO_DAEMON": "1"})):
                # Without NO_PROXY in another region: the daemon holds eu-west-1's token.
                for case, no_proxy in (
                    ("no_proxy", {"NO_PROXY": ".amazonaws.com"}),
                    ("", {"AWS_REGION": "us-east-2"}),
                ):
                    result = user.wev(
                        "printenv", "CODEARTIFACT_AUTH_TOKEN", env={**extra, **no_proxy}
                    )
                    results[f"{mode} {case}".strip()] = {
                        "status": result.returncode,
                        "stderr": result.stderr,
                        "issued": fake.is_valid_token(result.stdout.strip()),
                    }
        finally:
            daemon.stop()
        results["regions"] = sorted({str(call.region) for call in fake.calls})
    print(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
