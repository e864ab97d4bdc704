"""``wev-echo``: a fixed value from the configuration (e.g. a per-project AWS_PROFILE)."""

from __future__ import annotations

from collections.abc import Mapping

from wev_daemon.plugins import Context, Plugin, PropertyError, Resolution, optional_str


class EchoPlugin(Plugin[str]):
    """``value``: a string, or a list joined by ``separator`` (default a space)."""

    id = "wev-echo"
    properties = frozenset({"value", "separator"})
    cacheable = False  # nothing to fetch: resolved afresh, never held in memory

    def parse(self, properties: Mapping[str, object]) -> str:
        value = properties.get("value")
        separator = optional_str(properties, "separator")
        if value is None:
            raise PropertyError("'value' is required")
        if isinstance(value, list) and all(isinstance(item, str | int | float) for item in value):
            text = (" " if separator is None else separator).join(str(item) for item in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            raise PropertyError("'value' must be a string or a list of strings")
        if "\0" in text:
            raise PropertyError("'value' must not contain a NUL character")
        return text

    def describe(self, settings: str, context: Context) -> str:
        return "a fixed value from the configuration"

    async def resolve(self, settings: str, context: Context) -> Resolution:
        # What the configuration says is no secret wev was given to keep.
        return Resolution((settings,), secret=(False,))
