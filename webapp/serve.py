"""``paperfeed serve``: the web app under waitress, a production WSGI server.

The ``paperfeed`` CLI lives in ``jobs``, which must not import ``webapp``; this
module plugs the command in through the ``paperfeed.commands`` entry point.
"""
from __future__ import annotations

import errno
import logging
import socket
import sys

HELP = "serve the web app with waitress (production WSGI server)"


def add_arguments(parser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=5000, help="port (default 5000; 0 picks a free one)")
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads (default 8)")
    parser.add_argument("--dev", action="store_true",
                        help="dev mode: generate and keep a secret key in <data-dir>/instance if none is set")


def run(args, settings) -> int:
    import waitress

    from . import StartupError, create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app({"PRODUCTION": not args.dev}, settings=settings)
    except StartupError as exc:
        print(f"paperfeed serve: error: {exc}", file=sys.stderr)
        return 2
    app.extensions["paperfeed"].index()  # load the features before the first request, and fail early
    try:  # create_server binds at once, so a busy port is one line here, not a crash after "serving on"
        server = waitress.create_server(app, host=args.host, port=args.port, threads=args.threads,
                                        ident="paperfeed")
    except OSError as exc:
        print(f"paperfeed serve: error: {bind_error(exc, args.host, args.port)}", file=sys.stderr)
        return 2
    port = getattr(server, "effective_port", args.port)
    print(f"paperfeed: serving on http://{args.host}:{port}/ (Ctrl-C to stop)", file=sys.stderr)
    try:
        server.run()
    finally:
        server.close()
    return 0


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0-65535."""
    import argparse
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def bind_error(exc: OSError, host: str, port: int) -> str:
    """One line for a failure to listen on ``host:port``, with what to do about it."""
    if exc.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is already in use (another `paperfeed serve`?): stop that server or "
                f"pass --port with a free port")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (f"permission denied to listen on port {port}: use a port above 1023 (and a reverse proxy "
                f"in front for 80/443)")
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return f"cannot listen on {host!r}: it is not an address of this machine (try 127.0.0.1 or 0.0.0.0)"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
