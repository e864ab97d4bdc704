"""The `wev` command: a thin client that asks `wev-daemon` for values and execs.

Its hot path: ``cli`` (options, the main path, exit statuses), ``config_files``
(which files apply, trusted, and their parse cache), ``connection`` and
``transport`` (one request to the daemon), ``paths`` (where the socket is),
``execute`` (the exec), and ``protocol`` (shared with the daemon). Off it:
``config_parse`` and ``yaml_loader`` (a changed file), ``spawn`` (starting a
daemon), ``progress``, ``prompt`` and ``answer`` (waiting and questions),
``control`` (``--status``, ``--forget``, ``--stop``), ``output`` (what the
user reads), ``versions``; and the doors without ``wev`` in front:
``aws_credentials``, ``keyring_backend``, ``token_helper`` and ``codeartifact``,
``docker_helper``, ``docker_setup`` and ``ecr``.

Nothing here may import the daemon, asyncio, aiohttp or botocore on the path of
an ordinary ``wev COMMAND`` call; see ``tests/test_client_imports.py``.
"""

__version__ = "2.0.0.dev0"
