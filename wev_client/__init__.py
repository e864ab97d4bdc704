"""The `wev` command: a thin client that asks `wev-daemon` for values and execs.

Nothing here may import the daemon, asyncio, aiohttp or botocore on the path of
an ordinary ``wev COMMAND`` call; see ``tests/test_client_imports.py``.
"""

__version__ = "2.0.0.dev0"
