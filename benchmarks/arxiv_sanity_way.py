"""The arxiv-sanity-lite way, reimplemented as the baseline for bench_vs_arxiv_sanity.py.

Usage (one directory holds papers.db, dict.db and features.p, as lite's data/):
  python benchmarks/arxiv_sanity_way.py ingest --dir D FILE.jsonl
  python benchmarks/arxiv_sanity_way.py compute --dir D
  python benchmarks/arxiv_sanity_way.py serve --dir D --port P [--threads 8]

Written from a reading of karpathy/arxiv-sanity-lite (aslite/db.py, arxiv_daemon.py,
compute.py, serve.py), not copied. What it keeps on purpose, because that is what
the benchmark measures:
- papers are pickled one by one into sqlitedict (default pickle encoding; lite
  also zlib-compresses, which would only make it slower), plus a ``metas`` table,
  with lite's autocommit=True (a commit after every write);
- compute loads every paper, fits TfidfVectorizer, then transforms in a second
  pass (lite's fit/transform), and pickles {pids, x, vocab, idf};
- every ranked request reloads features.p from disk and fits a LinearSVC over
  all papers (C=0.01, tol=1e-6, dual=True as in lite's scikit-learn 1.0.1); search counts query
  substrings in every paper.
This is benchmark code: it unpickles its own files. Paperfeed never does.
"""
from __future__ import annotations

import argparse
import email.utils
import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np
from flask import Blueprint, Flask, current_app, g, jsonify, request
from sklearn import svm
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlitedict import SqliteDict

RET_NUM = 25  # results per response; the benchmark asks Paperfeed for 25 too


def papers_db(root: Path, flag: str = "r") -> SqliteDict:
    return SqliteDict(str(root / "papers.db"), tablename="papers", flag=flag, autocommit=True)


def metas_db(root: Path, flag: str = "r") -> SqliteDict:
    return SqliteDict(str(root / "papers.db"), tablename="metas", flag=flag, autocommit=True)


def tags_db(root: Path, flag: str = "r") -> SqliteDict:
    return SqliteDict(str(root / "dict.db"), tablename="tags", flag=flag, autocommit=True)


def lite_record(rec: dict) -> dict:
    """A Kaggle snapshot record shaped like the feedparser dict lite stores for each paper."""
    pid = rec["id"]
    version = len(rec.get("versions") or []) or 1
    created = (rec.get("versions") or [{}])[-1].get("created")
    stamp = email.utils.parsedate_to_datetime(created).timestamp() if created else 0.0
    authors = [{"name": " ".join(x for x in (a[1:2] + a[:1] + a[2:3]) if x)} for a in rec.get("authors_parsed") or []]
    cats = (rec.get("categories") or "").split()
    return {
        "id": f"http://arxiv.org/abs/{pid}v{version}", "_idv": f"{pid}v{version}", "_id": pid, "_version": version,
        "_time": stamp, "_time_str": time.strftime("%b %d %Y", time.gmtime(stamp)),
        "title": rec.get("title") or "", "summary": rec.get("abstract") or "",
        "authors": authors, "author": authors[-1]["name"] if authors else "",
        "tags": [{"term": c, "scheme": "http://arxiv.org/schemas/atom", "label": None} for c in cats],
        "arxiv_primary_category": {"term": cats[0] if cats else ""},
        "arxiv_comment": rec.get("comments"), "arxiv_journal_ref": rec.get("journal-ref"),
        "arxiv_doi": rec.get("doi"), "updated": created, "published": (rec.get("versions") or [{}])[0].get("created"),
        "links": [{"href": f"http://arxiv.org/abs/{pid}v{version}", "rel": "alternate", "type": "text/html"},
                  {"href": f"http://arxiv.org/pdf/{pid}v{version}", "rel": "related", "type": "application/pdf"}],
    }


def ingest(root: Path, path: str) -> dict:
    """Store papers one at a time, as lite's daemon does: look up, compare _time, write paper and meta."""
    root.mkdir(parents=True, exist_ok=True)
    pdb, mdb = papers_db(root, "c"), metas_db(root, "c")
    counts = {"new": 0, "replaced": 0, "had": 0, "bad": 0}
    with open(path, "rb") as f:
        for line in f:
            try:
                p = lite_record(json.loads(line))
            except (ValueError, KeyError, TypeError):
                counts["bad"] += 1
                continue
            pid = p["_id"]
            if pid in pdb:
                if p["_time"] <= pdb[pid]["_time"]:
                    counts["had"] += 1
                    continue
                counts["replaced"] += 1
            else:
                counts["new"] += 1
            pdb[pid] = p
            mdb[pid] = {"_time": p["_time"]}
    pdb.close()
    mdb.close()
    return counts


def compute(root: Path) -> dict:
    v = TfidfVectorizer(input="content", encoding="utf-8", decode_error="replace", strip_accents="unicode",
                        lowercase=True, analyzer="word", stop_words="english",
                        token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", ngram_range=(1, 2), max_features=20000,
                        norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True, max_df=0.1, min_df=5)
    pdb = papers_db(root)

    def corpus():
        for pid in pdb.keys():
            d = pdb[pid]
            yield " ".join([d["title"], d["summary"], " ".join(a["name"] for a in d["authors"])])

    v.fit(corpus())
    x = v.transform(corpus()).astype(np.float32)
    features = {"pids": list(pdb.keys()), "x": x, "vocab": v.vocabulary_, "idf": v._tfidf.idf_}
    pdb.close()
    tmp = root / "features.p.tmp"  # lite's safe_pickle_dump: write aside, then rename
    with open(tmp, "wb") as f:
        pickle.dump(features, f, -1)
    os.replace(tmp, root / "features.p")
    return {"papers": x.shape[0], "features": x.shape[1], "nnz": int(x.nnz)}


def write_tags(root: Path, user: str, tags: dict[str, list[str]]) -> None:
    """The user's library as lite keeps it: one dict of tag -> set of pids per user."""
    with tags_db(root, "c") as db:
        db[user] = {tag: set(pids) for tag, pids in tags.items()}


bp = Blueprint("lite", __name__)


def _root() -> Path:
    return current_app.config["LITE_DIR"]


def _papers() -> SqliteDict:
    if not hasattr(g, "pdb"):  # lite opens the store lazily per request and closes it at teardown
        g.pdb = papers_db(_root())
    return g.pdb


@bp.teardown_app_request
def _close(_exc=None):
    if hasattr(g, "pdb"):
        g.pdb.close()


def _user_tags(user: str) -> dict:
    with tags_db(_root()) as db:
        return db[user] if user in db else {}


def svm_rank(root: Path, tags: dict, pid: str = "", C: float = 0.01):
    """Lite's ranking: reload every feature from disk, fit an SVM over all papers, score all papers."""
    t0 = time.perf_counter()
    with open(root / "features.p", "rb") as f:
        features = pickle.load(f)
    x, pids = features["x"], features["pids"]
    ptoi = {p: i for i, p in enumerate(pids)}
    y = np.zeros(x.shape[0], dtype=np.float32)
    for p in ([pid] if pid else [p for ids in tags.values() for p in ids]):
        y[ptoi[p]] = 1.0
    if y.sum() == 0:
        return [], [], {}
    t1 = time.perf_counter()
    # lite pins scikit-learn 1.0.1, whose LinearSVC defaults to dual=True; today's default ("auto") picks the
    # slower primal solver once there are more papers than features, so the version's behaviour is spelled out.
    clf = svm.LinearSVC(class_weight="balanced", verbose=False, max_iter=10000, tol=1e-6, C=C, dual=True)
    clf.fit(x, y)
    t2 = time.perf_counter()
    s = clf.decision_function(x)
    order = np.argsort(-s)
    ivocab = {i: w for w, i in features["vocab"].items()}  # lite also shows the model's top words
    words = [ivocab[i] for i in np.argsort(-clf.coef_[0])[:40]]
    timing = {"load_s": t1 - t0, "train_s": t2 - t1, "rank_s": time.perf_counter() - t2, "words": len(words)}
    return [pids[i] for i in order], [100 * float(s[i]) for i in order], timing


def search_rank(pdb: SqliteDict, q: str):
    """Lite's search: count query words in every paper's authors, title and abstract, in Python."""
    qs = q.lower().strip().split()
    match = lambda s: sum(min(3, s.lower().count(qp)) for qp in qs)  # noqa: E731
    matchu = lambda s: sum(int(s.lower().count(qp) > 0) for qp in qs)  # noqa: E731
    pairs = []
    for pid, p in pdb.items():
        score = 10.0 * matchu(" ".join(a["name"] for a in p["authors"])) + 20.0 * matchu(p["title"]) \
            + 1.0 * match(p["summary"])
        if score > 0:
            pairs.append((score, pid))
    pairs.sort(reverse=True)
    return [p for _, p in pairs], [s for s, _ in pairs]


def _render(pids, scores, **extra):
    pdb = _papers()
    out = [{"id": d["_id"], "title": d["title"], "time": d["_time_str"], "score": score,
            "authors": ", ".join(a["name"] for a in d["authors"]), "summary": d["summary"]}
           for d, score in ((pdb[p], s) for p, s in zip(pids[:RET_NUM], scores[:RET_NUM]))]
    return jsonify(papers=out, **extra)


@bp.get("/api/health")
def health():
    return jsonify(ok=True)


@bp.get("/api/feed")
def feed():
    library = _user_tags(request.args.get("user", ""))
    wanted = set(request.args.get("tags", "all").split(","))
    chosen = {t: ids for t, ids in library.items() if "all" in wanted or t in wanted}
    pids, scores, timing = svm_rank(_root(), chosen)
    have = set().union(*library.values()) if library else set()  # skip_have=yes
    kept = [(p, s) for p, s in zip(pids, scores) if p not in have]
    return _render([p for p, _ in kept], [s for _, s in kept], timing=timing)


@bp.get("/api/similar/<pid>")
def similar(pid: str):
    pids, scores, timing = svm_rank(_root(), {}, pid=pid)
    return _render(pids, scores, timing=timing)


@bp.get("/api/search")
def search():
    pids, scores = search_rank(_papers(), request.args.get("q", ""))
    return _render(pids, scores)


def create_app(root: Path) -> Flask:
    app = Flask(__name__)
    app.config["LITE_DIR"] = Path(root)
    app.register_blueprint(bp)
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["ingest", "compute", "serve"])
    parser.add_argument("file", nargs="?")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_intermixed_args()
    if args.command == "ingest":
        print(json.dumps(ingest(args.dir, args.file)))
    elif args.command == "compute":
        print(json.dumps(compute(args.dir)))
    else:
        import waitress
        waitress.serve(create_app(args.dir), host=args.host, port=args.port, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
