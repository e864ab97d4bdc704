"""``wev-echo``: a fixed value from the configuration (e.g. a per-project AWS_PROFILE)."""

from __future__ import annotations

from collections.abc import Mapping

from wev_daemon.plugins import Context, Plugin, PropertyError, Resolution, optional_str


class EchoPlugin(Plugin[str]):
    """``value``: a string, or a list joined by ``separator`` (default a space)."""

    id = "wev-echo"
    properties = frozenset({"value", "separator"})

    def parse(self, properties: Mapping[str, object]) -> str:
        value = properties.get("value")
        separator = optional_str(properties, "separator")
        if separator is None:
            separator = " "
        if value is None:
            raise PropertyError("'value' is required")
        if isinstance(value, list):
            if not all(isinstance(item, str | int | float) for item in value):
                raise PropertyError("'value' must be a string or a list of strings")
            return separator.join(str(item) for item in value)
        if isinstance(value, dict):
            raise PropertyError("'value' must be a string or a list of strings")
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def describe(self, settings: str, context: Context) -> str:
        return "a fixed value from the configuration"

    async def resolve(self, settings: str, context: Context) -> Resolution:
        return Resolution((settings,))
