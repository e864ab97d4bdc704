"""AWS conventions both sides follow: the profile in effect, the CodeArtifact plugin's names.

One place for rules that the client's doors (keyring, ``wev-token``,
``--aws-credentials``, messages) and the daemon's plugins must agree on.
Standard library only, and nothing imported at run time: the client's
helpers import it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: The variables that select a profile, in the order botocore's session reads
#: them (its ``profile`` variable): ``AWS_DEFAULT_PROFILE`` wins over ``AWS_PROFILE``.
PROFILE_VARS = ("AWS_DEFAULT_PROFILE", "AWS_PROFILE")

#: The CodeArtifact plugin, which the keyring backend and ``wev-token`` ask by URL or entry.
CODEARTIFACT_PLUGIN_ID = "wev-awscodeartifact"
#: The user name CodeArtifact expects beside the token (HTTP Basic auth).
CODEARTIFACT_USERNAME = "aws"


def profile_name(env: Mapping[str, str], configured: str | None = None) -> str | None:
    """The profile botocore uses: the entry's ``profile:``, else the caller's variables."""
    if configured:
        return configured
    return next((env[name] for name in PROFILE_VARS if env.get(name)), None)
