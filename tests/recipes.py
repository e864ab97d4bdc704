"""The README's "Recipes": one block per package tool and shell, each run by the tests.

This module is the single source of those texts. ``tests/test_package_clients.py`` and
``tests/test_shell.py`` write each recipe's files as they are here (only the CodeArtifact host is
pointed at the local stand-ins) and run its command through the real tool;
``test_readme_recipes_are_the_tested_ones`` checks that the README shows exactly
``readme_section()``. Print it with ``python tests/recipes.py``; the section on the loopback proxy
(``proxy_section()``, run by ``tests/test_proxy.py``) with ``python tests/recipes.py proxy``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The example host in the README; tests replace it with the local index or registry.
HOST = "corp-123456789012.d.codeartifact.eu-west-1.amazonaws.com"


@dataclass(frozen=True)
class File:
    name: str
    language: str
    text: str

    def block(self) -> str:
        return f"```{self.language}\n{self.text}```\n"

    def pointed_at(self, base_url: str) -> str:
        """The text with the example host replaced by ``base_url`` (``http://127.0.0.1:PORT``)."""
        scheme, _, host = base_url.partition("://")
        with_scheme = re.sub(
            rf"https://([^/\s\"]*@)?{re.escape(HOST)}", rf"{scheme}://\1{HOST}", self.text
        )
        return with_scheme.replace(HOST, host)


@dataclass(frozen=True)
class Recipe:
    title: str
    intro: str
    files: tuple[File, ...]
    command: str
    note: str = ""

    def file(self, name: str) -> File:
        return next(f for f in self.files if f.name == name)

    def markdown(self) -> str:
        parts = [f"### {self.title}\n", f"{self.intro}\n"]
        parts.extend(f.block() for f in self.files)
        if self.command:  # a note may have none
            parts.append(f"```sh\n{self.command}\n```\n")
        if self.note:
            parts.append(f"{self.note}\n")
        return "\n".join(parts)


def _wev_yml(key: str, *extra: str) -> File:
    lines = [
        "# wev.yml",
        f"{key}:",
        "  plugin:",
        "    id: wev-awscodeartifact",
        "    domain: corp",
        *extra,
    ]
    return File("wev.yml", "yaml", "\n".join(lines) + "\n")


PYPI = ("    repository: shared", "    format: pypi")

PIP = Recipe(
    "pip",
    "wev sets the token and pip's index URL, `https://aws:TOKEN@…/pypi/shared/simple/`:",
    (_wev_yml("[CODEARTIFACT_AUTH_TOKEN, PIP_INDEX_URL]", *PYPI),),
    "wev pip install corp-lib",
)


def _pipfile(url: str) -> File:
    """A Pipfile installing corp-lib from the source at ``url`` (pipenv expands ``${NAME}``)."""
    return File(
        "Pipfile",
        "toml",
        f'# Pipfile\n[[source]]\nurl = "{url}"\nverify_ssl = true\nname = "corp"\n\n'
        '[packages]\ncorp-lib = "*"\n',
    )


PIPENV = Recipe(
    "pipenv",
    "The Pipfile reads the token (pipenv expands `${NAME}` in source URLs):",
    (
        _wev_yml("CODEARTIFACT_AUTH_TOKEN"),
        _pipfile(f"https://aws:${{CODEARTIFACT_AUTH_TOKEN}}@{HOST}/pypi/shared/simple/"),
    ),
    "wev pipenv install",
    "pipenv (2026.10) keeps each resolver request in `$TMPDIR/pipenv-request-*.json`, the "
    "source URL expanded, token included, and never removes it; the Pipfile in [Long-running "
    "tools and IDEs](#pipenv-1) names wev's loopback URL instead, which holds no token.",
)

UV = Recipe(
    "uv",
    "wev sets uv's index URL, token included:",
    (_wev_yml("UV_INDEX_URL", *PYPI, "    values: [index_url]"),),
    "wev uv pip install corp-lib",
)

POETRY = Recipe(
    "Poetry",
    "The source is declared in `pyproject.toml`; wev sets its credentials "
    "(`POETRY_HTTP_BASIC_<SOURCE>_…`, the source name in capitals):",
    (
        _wev_yml(
            "[POETRY_HTTP_BASIC_CORP_USERNAME, POETRY_HTTP_BASIC_CORP_PASSWORD]",
            "    values: [username, token]",
        ),
        File(
            "pyproject.toml",
            "toml",
            "# pyproject.toml\n"
            "[[tool.poetry.source]]\n"
            'name = "corp"\n'
            f'url = "https://{HOST}/pypi/shared/simple/"\n'
            'priority = "primary"\n',
        ),
    ),
    "wev poetry install",
)

TWINE = Recipe(
    "twine",
    "wev sets twine's user name, password and repository URL (the repository endpoint):",
    (
        _wev_yml(
            "[TWINE_USERNAME, TWINE_PASSWORD, TWINE_REPOSITORY_URL]",
            *PYPI,
            "    values: [username, token, endpoint]",
        ),
    ),
    "wev twine upload dist/*",
)

NPM = Recipe(
    "npm",
    "wev sets the token and npm's registry (the plain endpoint); `.npmrc` gives npm the token "
    "for that registry:",
    (
        _wev_yml(
            "[CODEARTIFACT_AUTH_TOKEN, NPM_CONFIG_REGISTRY]",
            "    repository: shared",
            "    format: npm",
        ),
        File(
            ".npmrc",
            "ini",
            f"# .npmrc\n//{HOST}/npm/shared/:_authToken=${{CODEARTIFACT_AUTH_TOKEN}}\n",
        ),
    ),
    "wev npm install",
)

PACKAGE_TOOLS = (PIP, PIPENV, UV, POETRY, TWINE, NPM)

DIRENV = Recipe(
    "direnv",
    "direnv loads the variables when you enter the folder, and again when `wev.yml` changes:",
    (File(".envrc", "sh", '# .envrc\nwatch_file wev.yml wev.user.yml\neval "$(wev --export)"\n'),),
    "direnv allow",
    "direnv keeps the values until it reloads, while the daemon renews tokens ahead of expiry: "
    "run `direnv reload` after a token has expired, or prefer `wev COMMAND`.",
)

SHELLS = Recipe(
    "Other shells and formats",
    "`--export` prints the variables for a shell or a file; `--format` picks the form "
    "(`sh`, the default, for sh, bash and zsh):",
    (),
    'eval "$(wev --export)"                      # sh, bash, zsh\n'
    "wev --export --format fish | source         # fish\n"
    "wev --export --format dotenv > .env         # a .env file\n"
    "wev --export --format json                  # one JSON object",
    '`dotenv` writes `NAME=\'value\'`, or `NAME="value"` with `\\\\`, `\\"`, `\\n` and '
    "`\\r` escapes when the value holds a quote, a backslash or a line break; the tests read "
    "it back with python-dotenv, which expands `${NAME}` even inside quotes unless called "
    "with `interpolate=False` (tokens and URLs hold no `$`).",
)

SHELL_RECIPES = (DIRENV, SHELLS)

INTRO = """\
Each block below is run by wev's tests against the real tool, with a local
stand-in for CodeArtifact (`tests/test_package_clients.py`, `tests/test_shell.py`).
Replace `corp`, `shared` and the host with yours (`aws codeartifact
get-repository-endpoint --domain corp --repository shared --format pypi` prints
it). `values` names what each variable of the key receives, in order: `token`,
`username` (`aws`), `endpoint` (the repository URL) or `index_url` (PyPI:
the endpoint's `simple/` index with `aws:TOKEN@`). Without `values`, one name
gets the token, and two names with `repository` and `format` get the token and
the repository's URL (`index_url` for PyPI, `endpoint` for other formats).
Blocks for several tools can sit in one `wev.yml`: blocks resolved together
share one token call, and a name that two blocks set (`CODEARTIFACT_AUTH_TOKEN`
in the pip and npm recipes) gets a valid token from either.
"""


# -- Long-running tools and IDEs: the loopback proxy ----------------------------------------

#: The proxy's address in the README (the default port of uid 1000); tests use their own port.
PROXY_HOST = "127.0.0.1:24000"


def _proxied(key: str, fmt: str) -> File:
    return _wev_yml(key, "    repository: shared", f"    format: {fmt}", "    proxy: true")


def proxy_url(fmt: str, port: int | None = None) -> str:
    """The repository's loopback URL as the recipes write it (``port``: a test's own)."""
    host = PROXY_HOST if port is None else f"127.0.0.1:{port}"
    return f"http://{host}/corp/shared/{fmt}/"


REGISTER = "wev true     # once per daemon start: it learns the repository and your AWS context"

PROXY_PIP = Recipe(
    "pip",
    "`pip.conf` (or an IDE's interpreter settings) holds the loopback URL; `wev pip` sets it too:",
    (
        _proxied("PIP_INDEX_URL", "pypi"),
        File("pip.conf", "ini", f"# pip.conf\n[global]\nindex-url = {proxy_url('pypi')}simple/\n"),
    ),
    f"{REGISTER}\npip install corp-lib",
)

PROXY_UV = Recipe(
    "uv",
    "The index URL goes into `pyproject.toml`, and so into `uv.lock`, token-free; it does not "
    "change at each renewal, so uv's cache keeps hitting:",
    (
        _proxied("UV_INDEX_URL", "pypi"),
        File(
            "pyproject.toml",
            "toml",
            "# pyproject.toml\n"
            "[[tool.uv.index]]\n"
            'name = "corp"\n'
            f'url = "{proxy_url("pypi")}simple/"\n'
            "default = true\n",
        ),
    ),
    f"{REGISTER}\nuv lock && uv sync",
)

PROXY_POETRY = Recipe(
    "Poetry",
    "The source's URL is the proxy's; Poetry needs no credentials for it:",
    (
        _proxied("CORP_PYPI_URL", "pypi"),
        File(
            "pyproject.toml",
            "toml",
            "# pyproject.toml\n"
            "[[tool.poetry.source]]\n"
            'name = "corp"\n'
            f'url = "{proxy_url("pypi")}simple/"\n'
            'priority = "primary"\n',
        ),
    ),
    f"{REGISTER}\npoetry install",
)

PROXY_PIPENV = Recipe(
    "pipenv",
    "The Pipfile names the variable, which wev sets to the loopback URL: no token reaches "
    "`Pipfile.lock`, nor the resolver requests pipenv leaves in `$TMPDIR` (without a daemon, "
    "as in CI, the variable is the index URL with the token):",
    (
        _proxied("CORP_PYPI_URL", "pypi"),
        _pipfile("${CORP_PYPI_URL}"),
    ),
    "wev pipenv install",
)

PROXY_NPM = Recipe(
    "npm",
    "`.npmrc` names the proxy as the registry, with no `_authToken`:",
    (
        _proxied("NPM_CONFIG_REGISTRY", "npm"),
        File(".npmrc", "ini", f"# .npmrc\nregistry={proxy_url('npm')}\n"),
    ),
    f"{REGISTER}\nnpm install",
)

PROXY_RECIPES = (PROXY_PIP, PROXY_PIPENV, PROXY_UV, PROXY_POETRY, PROXY_NPM)

PROXY_INTRO = """\
A variable is frozen for the life of the process that got it: an IDE, a
language server, a Gradle-style daemon or a long build keeps the token it
started with and fails hours later, and a token in an index URL ends up in
lockfiles and `ps`. With `proxy: true` (a `wev-awscodeartifact` entry with
`repository` and `format` `pypi`, `npm` or `maven`), the variable is instead a
loopback URL served by wev-daemon,
`http://127.0.0.1:PORT/<domain>/<repository>/<format>/` (`<domain>-<account>`
when `account` is set; for `pypi` the value is its `simple/` index unless
`values: [endpoint]`). It holds no token and never changes, so it can sit in
an IDE's settings, `pip.conf`, `.npmrc` or `pyproject.toml` (on macOS it
carries a per-user secret, see "Only you get in": copy it from `wev --export`
rather than the recipes below). The daemon forwards each request to the
repository with the token it keeps fresh (HTTP Basic `aws:TOKEN` for pypi and
maven, Bearer for npm), streams bodies both ways, rewrites the repository's
own URLs in index pages, packuments and `Location` headers to the proxy, and
passes redirects elsewhere (downloads from S3) through untouched. A renewal
never breaks a request in flight: each request takes the current token.
Uploads go through too, with whatever credentials the tool insists on, which
the proxy replaces: `twine upload` with `TWINE_REPOSITORY_URL` set to the
endpoint URL (`values: [endpoint]`) and any `TWINE_USERNAME`/`TWINE_PASSWORD`;
`npm publish` with any `_authToken` for the proxy's URL in `.npmrc` (where the
URL carries a secret, use the secret).

- **The port** is `WEV_PROXY_PORT` in the daemon's environment, else
  23000 + uid % 8000 (24000 for uid 1000): the same across restarts and
  reboots. The proxy holds it on `127.0.0.1` and, where IPv6 loopback exists,
  on `[::1]`, so a `localhost` URL reaches no one else. `wev --status` shows
  the URLs, their upstream, requests and the last error. When the proxy
  cannot serve (another user holds the port, a bad `WEV_PROXY_PORT`), the
  daemon serves everything else; the `wev` call that needs the proxy fails
  (exit 69) with one line naming the reason, and the uid that holds the port,
  and `wev --status` says the same.
- **Registration.** Each `wev` call that resolves the entry tells the daemon
  the repository and the AWS context to fetch its token with (the latest call
  wins); the daemon keeps this in memory only. A daemon that `wev` started
  opens the port at the first such call; after it restarts (reboot, upgrade),
  the URL answers again once a `wev` call in the project has registered it:
  run `wev true` there (`wev --forget` drops the route with the token, so that
  a switched account is never used again by the proxy; the URL then answers
  503 with a one-line hint). With the service installed (`wev-daemon
  --install-service`), systemd or launchd listens on the port from the start
  (`wev-proxy.socket`, or the plist's `proxy` sockets), so a tool that
  connects after a reboot starts the daemon and gets that hint instead of a
  refused connection; the port is then the one the service was installed with.
- **Only you get in.** It answers only `Host: 127.0.0.1:PORT`,
  `[::1]:PORT` or `localhost:PORT` (in any case), and never a web page: a
  request with `Origin`, or with `Sec-Fetch-Site` other than `none`, gets 403 (package
  tools send neither; a page in your browser could otherwise publish with a
  `no-cors` POST). On Linux a connection is judged when it is accepted, by
  the owner of the connecting socket as the kernel reports it (sock_diag, else
  `/proc/net/tcp`): only you and root, and only a socket a process still
  holds (kernels before 6.17 report one its owner closed as root's). Another user's
  connection gets one 403 line and is closed, its request unread; refusals
  are logged at most once a minute per uid. Where the kernel does not say
  (macOS), the URL carries a per-user secret,
  `http://wev:SECRET@127.0.0.1:PORT/...`, kept 0600 in wev's state folder and
  made only there; pip, uv and Poetry hide it in their output and keep it out
  of lockfiles.
- **Right against CodeArtifact.** Every spelling of the repository's URL in
  pages, packuments, JSON and `Location` becomes the proxy's: an explicit
  `:443` (as npm packuments write it), any case of the host, JSON's `\\/`, a
  relative redirect. A page is inflated as it arrives and rewritten into one
  copy, at most 128 MiB once inflated (bigger: 502 with the reason) and two at
  a time. A download that breaks half-way breaks the tool's connection too,
  so the tool sees a failed download. Forwarded requests go through your
  `HTTPS_PROXY` unless `NO_PROXY` names the host, and trust your
  `AWS_CA_BUNDLE`, as the AWS calls do. A connection idle or slow for 10 s
  is closed: one that never completes its request, an upload that stops
  (408), a tool that stops reading its download. Requests count as activity
  for `--idle-exit`.
- **Errors you can read.** When no token can be had, the proxy answers 401
  (a login to renew, an MFA code nobody answered within the wait bound: the
  request waits for it, see [Questions without a terminal](#questions-without-a-terminal)),
  403 (AWS refuses your identity) or 502 with one line naming the repository
  and AWS's error, in the body and the daemon's log, instead of the 404
  CodeArtifact gives for bad credentials.
- Without a daemon (`WEV_NO_DAEMON=1`) the entry gets the direct URL: for
  `pypi` an index URL with the token in it, so CI runs the same `wev.yml`; an
  `npm` or `maven` URL (or `values: [endpoint]`) carries no token, so there
  the tool needs it from an entry of its own. Nothing is written to disk but
  the secret (macOS); no token is logged.

Each recipe below is run by the tests against the real tool
(`tests/test_proxy.py`); replace the port with yours.
"""


def proxy_section() -> str:
    """The README's ``## Long-running tools and IDEs`` section."""
    parts = ["## Long-running tools and IDEs\n", PROXY_INTRO]
    parts.extend(recipe.markdown() for recipe in PROXY_RECIPES)
    return "\n".join(parts)


# -- Without typing wev: the doors tools already have ------------------------------------------

#: Where the README's recipes say wev is installed (pipx's default); tests use the venv's.
INSTALLED = "/home/me/.local/bin"
#: wev from its repository, for a tool's own environment: the package index's ``wev`` is the
#: earlier 1.3.5. ``OWNER`` is a placeholder, said so where the README installs wev.
WEV_GIT = "git+https://github.com/OWNER/wev"

AWS_CREDENTIALS = Recipe(
    "AWS CLI, SDKs and Terraform: `credential_process`",
    "A profile whose `credential_process` is wev gets the credentials of a wev entry, here an "
    "MFA session: every AWS CLI, SDK and Terraform call shares the daemon's one session and "
    "asks for the code once, on the terminal of the first call that needs it. The SDK runs "
    "wev in its own working folder, so the entry lives in `~/.wev.yml`, which wev reads from "
    "any folder (every `wev COMMAND` then gets the same session too; in a project's "
    "`wev.yml`, the entry serves the AWS calls made in that project). `NAME` is any name of "
    "the entry's key; its names ending in `ACCESS_KEY_ID`, `SECRET_ACCESS_KEY` and "
    "`SESSION_TOKEN` give the credentials:",
    (
        File(
            "~/.wev.yml",
            "yaml",
            "# ~/.wev.yml\n"
            "[AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN]:\n"
            "  plugin:\n"
            "    id: wev-awsmfa\n"
            "    mfa_device: arn:aws:iam::123456789012:mfa/alice\n"
            "    duration: 3600\n",
        ),
        File(
            "~/.aws/config",
            "ini",
            "# ~/.aws/config\n"
            "[profile viawev]\n"
            f"credential_process = {INSTALLED}/wev --aws-credentials AWS_ACCESS_KEY_ID\n"
            "region = eu-west-1\n",
        ),
    ),
    "AWS_PROFILE=viawev aws sts get-caller-identity\n"
    "AWS_PROFILE=viawev terraform plan      # another terminal: the same session, no question",
    "wev prints the `credential_process` JSON (`Version: 1`, the keys, the session token and "
    "`Expiration` in UTC) on stdout and nothing else, and asks for the code on `/dev/tty`. "
    "Without a terminal (an IDE, cron) the code comes from an `mfa_process`: the entry's, "
    "else the one in the profile its session uses (the entry's `profile:`, else `[default]`; "
    "never `viawev`'s), from an askpass dialog or from `wev --answer` in any terminal (see "
    "[Questions without a terminal](#questions-without-a-terminal)); when none answers "
    "within the wait bound it fails, after a line saying what it waits for, with one line "
    "naming the profile, "
    "`wev: --aws-credentials AWS_ACCESS_KEY_ID (AWS profile viawev): [AWS_ACCESS_KEY_ID, ...]: "
    "needs input (MFA code for ...) and nobody answered within 120 s`, and how to answer. "
    "The session is asked "
    "for with the entry's `profile:` (`profile: work` to use that profile's keys), else your "
    "default credentials; the caller's `AWS_PROFILE` is the profile being served and plays no "
    "part (an entry whose `profile:` is that very profile fails at once, naming the loop), "
    "not even in `wev CMD` from a shell that exports it: one session, asked for once. "
    "A role profile chains on it as on any profile: `role_arn` with `source_profile = viawev` "
    "makes the SDK assume the role with wev's MFA session, so roles that require MFA ask no "
    "second code. "
    "Give the path of `wev` in full: IDEs and GUI tools run it with a short `PATH`. SDKs "
    "renew credentials that expire within 15 minutes, so prefer a `duration` of an hour or "
    "more. (`tests/test_aws_credentials.py`: botocore and the AWS CLI sign STS calls with "
    "them; two SDK processes on two terminals share one question; a role profile assumes "
    "its role with the session.)",
)

KEYRING = Recipe(
    "pip, uv, twine and Poetry: `keyring`",
    f"With `pip install 'wev[keyring] @ {WEV_GIT}'` in the tool's environment (`OWNER` is "
    "the account that hosts wev's repository: see [Installing](#installing)), keyring asks wev for "
    "CodeArtifact URLs: user name `aws` and the daemon's token, in about a millisecond. An "
    "index URL on a CodeArtifact host names the domain, its owner and the region, so it needs "
    "no configuration (the nearest `wev.yml` entry for that domain adds its `profile`). "
    "Where `AWS_ENDPOINT_URL_CODEARTIFACT` (or `AWS_ENDPOINT_URL`) points CodeArtifact at a "
    "stand-in, a URL that lies in the repository endpoint of an entry with `repository` and "
    "`format` is served too; one of another service (`pypi.org`) costs no token and no "
    "question. The index URL holds no token:",
    (
        _wev_yml("[CODEARTIFACT_AUTH_TOKEN, PIP_INDEX_URL]", *PYPI),
        File(
            "pip.conf",
            "ini",
            f"# pip.conf\n[global]\nindex-url = https://{HOST}/pypi/shared/simple/\n"
            "keyring-provider = import\n",
        ),
    ),
    "pip install corp-lib\n"
    "uv pip install --keyring-provider subprocess \\\n"
    f"    --index-url https://aws@{HOST}/pypi/shared/simple/ corp-lib",
    "uv runs the `keyring` command, which needs wev beside it (`uv tool install keyring --with "
    f"'wev @ {WEV_GIT}'`), and the user name in the URL. twine and Poetry ask keyring by "
    "themselves when it is installed in their environment (`pipx inject twine "
    f"'wev[keyring] @ {WEV_GIT}'`, `poetry self add 'wev[keyring] @ {WEV_GIT}'`). "
    "keyrings.codeartifact, which answers the same door, calls AWS on every "
    "lookup; `bench/keyring_lookup.py --rounds 40` times both against the same local "
    "stand-in for AWS (medians, 2 cores): 1.4 ms against 90 ms for a lookup in process "
    "(pip), 265 ms against 590 ms for a `keyring get` process (uv), of which keyring's own "
    "start-up takes 250 ms and 440 ms, and one AWS call for 81 lookups against 81; real AWS "
    "adds its round trip to each of those calls. "
    "(`tests/test_keyring.py` and `tests/test_door_recipes.py` run pip and uv.)",
)

PNPM = Recipe(
    "pnpm: `tokenHelper`",
    "pnpm runs a token helper, an absolute path without arguments, taken from the user's "
    "`~/.npmrc` only. `wev-token` prints `Bearer TOKEN` for the nearest `wev.yml`'s "
    "CodeArtifact entry with `format: npm` (else its first CodeArtifact entry); "
    "`wev-token --raw [NAME]` prints the token alone:",
    (
        _wev_yml(
            "[CODEARTIFACT_AUTH_TOKEN, NPM_CONFIG_REGISTRY]",
            "    repository: shared",
            "    format: npm",
        ),
        File(
            "~/.npmrc",
            "ini",
            f"# ~/.npmrc\n//{HOST}/npm/shared/:tokenHelper={INSTALLED}/wev-token\n",
        ),
        File(".npmrc", "ini", f"# .npmrc\nregistry=https://{HOST}/npm/shared/\n"),
    ),
    "pnpm install",
    "npm and yarn have no such door: npm reads `_authToken` from `.npmrc`, expanding "
    "`${NAME}` from its environment, and yarn (berry) reads `npmAuthToken` from "
    "`.yarnrc.yml` the same way, so both take the token from a variable that wev sets: "
    "`wev npm install` with the [npm recipe](#npm)'s `.npmrc`, or "
    '`npmAuthToken: "${CODEARTIFACT_AUTH_TOKEN}"` and `wev yarn install`. For an IDE that '
    "keeps running, the loopback proxy needs no token at all "
    "(see [Long-running tools and IDEs](#long-running-tools-and-ides)). "
    "(`tests/test_door_recipes.py` runs pnpm when it is installed.)",
)

DOCKER = Recipe(
    "Docker builds: a BuildKit secret",
    "The token reaches one `RUN` step as a secret file, never as a `--build-arg` or an "
    "`ENV`, which `docker history` and every pushed layer would keep:",
    (
        _wev_yml("CODEARTIFACT_AUTH_TOKEN"),
        File(
            "Dockerfile",
            "dockerfile",
            "# syntax=docker/dockerfile:1\n"
            "FROM python:3.12-slim\n"
            "RUN --mount=type=secret,id=codeartifact \\\n"
            f'    PIP_INDEX_URL="https://aws:$(cat /run/secrets/codeartifact)@{HOST}'
            '/pypi/shared/simple/" \\\n'
            "    pip install --no-cache-dir corp-lib\n",
        ),
    ),
    "DOCKER_BUILDKIT=1 wev docker build --secret id=codeartifact,env=CODEARTIFACT_AUTH_TOKEN .",
    "`docker build` reads the secret from the variable wev sets; inside the step it is the "
    "file `/run/secrets/codeartifact`, for that step only. Secrets need BuildKit: the "
    "builder of `docker build` since Docker 23 when the buildx plugin is installed (as with "
    "Docker Desktop and Docker's own packages), which `DOCKER_BUILDKIT=1` asks for on older "
    "ones; `docker buildx build` takes the same options. (No Docker engine on the test "
    "machine: the tests check the shape, a secret mount and no `ARG`, `ENV` or "
    "`--build-arg` for the token, and run the step's shell line against the stand-in index.)",
)

GITHUB_ACTIONS = Recipe(
    "GitHub Actions with OIDC",
    "The job trades GitHub's OIDC token for a role's credentials (no AWS keys stored in "
    "GitHub), and wev resolves in its own process: one job, nothing to share a daemon with:",
    (
        File(
            ".github/workflows/build.yml",
            "yaml",
            "# .github/workflows/build.yml\n"
            "name: build\n"
            "on: push\n"
            "permissions:\n"
            "  id-token: write   # GitHub's OIDC token, for AWS\n"
            "  contents: read\n"
            "jobs:\n"
            "  build:\n"
            "    runs-on: ubuntu-latest\n"
            "    steps:\n"
            "      - uses: actions/checkout@v4\n"
            "      - uses: aws-actions/configure-aws-credentials@v4\n"
            "        with:\n"
            "          role-to-assume: arn:aws:iam::123456789012:role/ci-codeartifact\n"
            "          aws-region: eu-west-1\n"
            f"      - run: pip install 'wev @ {WEV_GIT}'   # OWNER: see Installing\n"
            "      - run: WEV_NO_DAEMON=1 wev pip install corp-lib\n",
        ),
    ),
    "",
    "The project's `wev.yml` is the [pip recipe](#pip)'s, unchanged: the role's credentials "
    "come from the variables the action sets. Without the action, `AWS_ROLE_ARN` and "
    "`AWS_WEB_IDENTITY_TOKEN_FILE` work too. The role needs "
    "`codeartifact:GetAuthorizationToken`, `codeartifact:GetRepositoryEndpoint`, "
    "`codeartifact:ReadFromRepository` and `sts:GetServiceBearerToken`. In GitHub Actions "
    "(`GITHUB_ACTIONS=true`) wev first prints `::add-mask::VALUE` on stdout for each value its "
    "plugin marks secret (the token, an index URL with the token inside; not a plain URL or a "
    "profile name), so the runner hides them in every later line of the job (on stderr when "
    "stdout goes to a file, `wev CMD > out.json`, which would otherwise hold them: the runner "
    "reads workflow commands on a step's stderr too; a pipe, `wev CMD | jq`, hands them to the "
    'next tool: set the values with `eval "$(wev --export)"` first and run the pipeline '
    "without `wev`); "
    '`eval "$(wev --export)"` makes the shell print the same lines (in fish too), and '
    "`--format dotenv` or `json` print them on stderr, keeping stdout data. (The tests parse "
    "this workflow and run its last step with the credentials that the stand-in STS gives "
    "for the role's web identity; `tests/test_masking.py` checks the mask lines.)",
)

REMOTE = Recipe(
    "Dev containers and Remote-SSH",
    "wev and its daemon run where the command runs: inside the container, or on the remote "
    "host with VS Code Remote-SSH. The socket is `$XDG_RUNTIME_DIR/wev/daemon.sock`; "
    "containers and SSH sessions without a login manager have no `XDG_RUNTIME_DIR`, so it is "
    "`/run/user/<uid>/wev/daemon.sock` where that folder is yours and 0700, else "
    "`/tmp/runtime-<uid>/wev/daemon.sock` (`$TMPDIR` for `/tmp` if set; wev creates the "
    "folder, mode 0700, and says so once). Do not mount the host's socket into a container: "
    "the daemon serves its own user only, and what a request resolves with is the AWS context "
    "of the `wev` that sends it. Give the container your AWS configuration read-only "
    '(in `devcontainer.json`, `"mounts": ["source=${localEnv:HOME}/.aws,'
    'target=/home/vscode/.aws,type=bind,readonly"]`) or container credentials '
    "(`AWS_CONTAINER_CREDENTIALS_FULL_URI`, as `aws-vault exec --ecs-server` sets them). An "
    "MFA question is asked in the container's or the remote host's terminal.",
    (),
    "",
)

DOORS = (AWS_CREDENTIALS, KEYRING, PNPM, DOCKER, GITHUB_ACTIONS, REMOTE)

DOORS_INTRO = """\
Many tools have a door of their own for credentials; wev answers each from
the daemon's memory, with the token and the MFA session that every terminal
shares, so the command needs no `wev` in front. Like `wev --export`, each door
hands the value to the program that asks, on stdout or through keyring, and
keeps nothing on disk; whoever can run a program as you can ask, as with the
daemon's socket. Each recipe is tested with the real tool where the test
machine has it, against the same stand-ins for AWS.
"""


def doors_section() -> str:
    """The README's ``## Without typing wev`` section."""
    parts = ["## Without typing wev\n", DOORS_INTRO]
    parts.extend(recipe.markdown() for recipe in DOORS)
    return "\n".join(parts)


def readme_section() -> str:
    """The README's ``## Recipes`` section, up to the next ``## `` heading."""
    parts = ["## Recipes\n", INTRO]
    parts.extend(recipe.markdown() for recipe in (*PACKAGE_TOOLS, *SHELL_RECIPES))
    return "\n".join(parts)


if __name__ == "__main__":
    import sys

    sections = {"proxy": proxy_section, "doors": doors_section}
    print(sections.get(" ".join(sys.argv[1:]), readme_section)(), end="")
