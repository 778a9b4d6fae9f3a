"""``paperfeed demo``: the one command a new user runs.

Imports the 2,500 recent papers shipped with the package (or ``--from FILE``, or
fetches live ones with ``--fetch``), computes features, creates a demo user with a
small library so the feed is personal from the first page, trains, and serves the
web app (in dev mode) if it is installed. Without ``--fetch`` it needs no network.
"""
from __future__ import annotations

import argparse
import socket

from recommender.demo import SAMPLE, seed_demo_user

from . import compute, fetch, import_snapshot, train
from .cli import plugin_commands
from .output import warn


def add_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--from", dest="source", metavar="FILE",
                        help="import this Kaggle-format snapshot instead of the embedded sample")
    source.add_argument("--fetch", action="store_true", help="fetch recent papers from the arXiv API instead "
                        "of the embedded sample (needs the network)")
    parser.add_argument("--max-results", type=int, default=300, help="papers to fetch with --fetch (default 300)")
    parser.add_argument("--no-serve", action="store_true", help="stop after training instead of serving")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port to serve on (default 5000)")


def port_problem(host: str, port: int) -> str | None:
    """Why the demo could not serve on ``host:port``, or None: checked before it spends a minute building."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does
            probe.bind(address)
    except OSError as exc:
        return f"cannot serve on {host}:{port} ({exc.strerror or exc}): pass --port with a free port, or --no-serve"
    return None


def run(args, settings) -> int:
    if not args.no_serve and (problem := port_problem(args.host, args.port)):
        raise ValueError(problem)
    if not args.fetch:
        source = args.source or str(SAMPLE)
        warn(f"demo: importing {source if args.source else 'the 2,500 recent papers shipped with Paperfeed'}")
        import_snapshot.run(argparse.Namespace(json=False, files=[source]), settings)
    else:
        warn(f"demo: fetching up to {args.max_results} recent papers from the arXiv API")
        code = fetch.run(argparse.Namespace(json=False, category=None, since=None, max_results=args.max_results),
                         settings)
        if code == 2:
            return 2
    warn("demo: computing features")
    compute.run(argparse.Namespace(json=False, max_features=None), settings)
    user = seed_demo_user(settings)
    if user:
        warn(f"demo: created user {user[0]!r} with password {user[1]!r} and a small library")
    train.run(argparse.Namespace(json=False, all=False), settings)
    serve = plugin_commands().get("serve")
    if args.no_serve or serve is None:
        warn("demo: done. Try `paperfeed recommend demo`, or `paperfeed serve --dev` for the web app")
        return 0
    warn(f"demo: log in at http://{args.host}:{args.port}/login")
    return serve.load().run(argparse.Namespace(host=args.host, port=args.port, threads=8, dev=True), settings)
