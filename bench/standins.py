"""Stand-ins for the daemon and the client, to show what each side of a warm call costs.

``bench/startup.py --floors`` runs them beside the real programs:

- a daemon stand-in on a socket of its own answers each request with the
  response the real daemon gave the same bytes (it asks the daemon once, then
  replays): ``at-once`` from a blocking loop, with nothing of a server
  framework; ``aiohttp`` from aiohttp's low-level server, as ``wev-daemon``
  is built on, with no handler work of wev's;
- ``client`` is a client of one file: it sends the request recorded in a
  file (what ``wev`` sends from the project), reads the answer and execs its
  command, with the same PATH search as ``wev``. It parses nothing.

Run ``python bench/standins.py at-once|aiohttp SOCKET DAEMON_SOCKET`` or
``python bench/standins.py client SOCKET REQUEST_FILE COMMAND [ARGS...]``.
No ``from __future__`` import, as little as the client needs: it is a floor.
"""

import os
import sys


def ask_daemon(daemon_socket: str, request: bytes) -> bytes:
    """The real daemon's whole response to ``request``."""
    import socket

    from wire import read_message  # type: ignore[import-not-found,unused-ignore]

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(daemon_socket)
        conn.sendall(request)
        response: bytes = read_message(conn)
        return response


def listen(path: str) -> object:
    import socket

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen(128)
    return server


def serve_at_once(path: str, daemon_socket: str) -> None:
    """Answer every request at once from a blocking loop, replaying the daemon's answer."""
    import socket

    from wire import read_message  # type: ignore[import-not-found,unused-ignore]

    server = listen(path)
    assert isinstance(server, socket.socket)
    answers: dict[bytes, bytes] = {}
    while True:
        conn, _ = server.accept()
        with conn:
            try:
                request = read_message(conn)
                if not request:  # a probe: connected, sent nothing
                    continue
                answer = answers.get(request)
                if answer is None:
                    answer = answers[request] = ask_daemon(daemon_socket, request)
                conn.sendall(answer)
            except OSError:  # that client went away: the next one is served
                continue


def serve_aiohttp(path: str, daemon_socket: str) -> None:
    """Answer every request from aiohttp's low-level server, replaying the daemon's answer."""
    import asyncio

    from aiohttp import web

    answers: dict[bytes, tuple[int, bytes]] = {}

    async def handler(request: web.BaseRequest) -> web.Response:
        body = await request.read()
        key = request.path.encode() + b"\0" + body
        known = answers.get(key)
        if known is None:  # once per distinct request: the daemon's own answer
            head = (
                f"{request.method} {request.path} HTTP/1.1\r\nHost: wev\r\n"
                f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            raw = ask_daemon(daemon_socket, head.encode() + body)
            status = int(raw.split(b" ", 2)[1])
            known = answers[key] = (status, raw.partition(b"\r\n\r\n")[2])
        status, payload = known
        return web.Response(status=status, body=payload, content_type="application/json")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_unix_server(web.Server(handler, access_log=None), path)
        os.chmod(path, 0o600)
        await asyncio.Event().wait()

    asyncio.run(main())


def run_client(path: str, request_file: str, command: list[str]) -> int:
    """Send the recorded request, read the answer, exec ``command`` as ``wev`` would."""
    import _socket

    with open(request_file, "rb") as file:
        request = file.read()
    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    conn.connect(path)
    conn.sendall(request)
    while conn.recv(65536):
        pass
    conn.close()
    env = dict(os.environ)
    for folder in env.get("PATH", os.defpath).split(os.pathsep):
        try:
            os.execve(os.path.join(folder or ".", command[0]), command, env)  # noqa: S606
        except (FileNotFoundError, NotADirectoryError):
            continue
    return 127


def main(argv: list[str]) -> int:
    kind, path, *rest = argv
    if kind == "client":
        return run_client(path, rest[0], rest[1:])
    # The daemon stand-ins read messages as the tests' own tools do.
    sys.path.insert(
        0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
    )
    if kind == "at-once":
        serve_at_once(path, rest[0])
    elif kind == "aiohttp":
        serve_aiohttp(path, rest[0])
    else:
        print(f"unknown stand-in {kind!r}", file=sys.stderr)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
