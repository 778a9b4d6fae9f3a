"""``paperfeed serve``: the web app under waitress, a production WSGI server.

The ``paperfeed`` CLI lives in ``jobs``, which must not import ``webapp``; this
module plugs the command in through the ``paperfeed.commands`` entry point.
"""
from __future__ import annotations

import logging
import sys

HELP = "serve the web app with waitress (production WSGI server)"


def add_arguments(parser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
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
    print(f"paperfeed: serving on http://{args.host}:{args.port}/ (Ctrl-C to stop)", file=sys.stderr)
    waitress.serve(app, host=args.host, port=args.port, threads=args.threads, ident="paperfeed")
    return 0
