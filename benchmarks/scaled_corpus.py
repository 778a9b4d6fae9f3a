"""A reproducible corpus of N papers (2.7M: all of arXiv) grown from the 131,757 real ones, for scaling benchmarks.

Usage:  python benchmarks/scaled_corpus.py --papers 2700000 --out /tmp/scaled-2.7M.jsonl.gz [--seed 0]

There is no network here, so all of arXiv cannot be downloaded; this grows the real corpus instead:

- **Rows.** Paper ``k`` (0 <= k < N) is a copy of real paper ``k mod 131,757`` in a seeded random order, so every
  real paper is used ``N / 131,757`` times (about 20.5 at 2.7M) and the copies of one paper are spread in time.
- **Ids and dates.** Dates run from 2007-04-01 to 2026-06-30 in the order written (the file is sorted by date, as
  the Kaggle snapshot is), more papers each month as arXiv grew (about 5,000 a month in 2007, 8,000 in 2014 and
  24,000 in 2025), and each paper gets a new-style id of its month (``YYMM.NNNN`` before 2015, ``YYMM.NNNNN``
  after), numbered in order. The real ids are not kept (they would collide); ``versions`` and ``update_date`` follow
  the new date.
- **Text.** Copy 0 of each paper keeps its real title and abstract. Every later copy keeps each abstract
  sentence with probability 1/2 and otherwise takes a random sentence of another real paper of the same primary
  category, and has two title words swapped with words from another same-category title: rows are not
  identical, and the words, their statistics per field and the abstract lengths stay arXiv's.
- **Authors.** Copy 0 keeps its real authors; later copies keep each author with probability 1/2 and replace
  the others with authors of another real paper of the same primary category, so co-author clusters stay
  recognisable but spread, as real collaborations do.
- **Categories** are the real paper's.

How it differs from the real thing: 20 versions of each topic instead of 20 years of drifting topics (no new
words after 2026, no old ones before 2025), every archive in the proportions of the 2025-2026 sample (94k of the
131k are cs; all of arXiv is far less cs-heavy), sentences mixed across papers (abstracts are less coherent, so
bigrams across sentence boundaries are rarer), and no version histories. It measures how time and memory grow
with the number of rows, nonzeros and authors; it says nothing about quality, which is measured on real data.

Streams its output (gzip): the real corpus's sentences are held once (about 150 MB), the output never.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import lzma
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PAPERFEED_SHARED", REPO.parent / "shared"))
START, END = dt.date(2007, 4, 1), dt.date(2026, 7, 1)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z$\\(])")


def _open(path: Path):
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def load(path: Path) -> list[dict]:
    """The real records, with only the fields the copies need (text split into sentences once)."""
    out = []
    with _open(path) as handle:
        for line in handle:
            r = json.loads(line)
            out.append({"title": r["title"], "sentences": _SENTENCE_END.split(r["abstract"].strip()),
                        "authors": [a.strip() for a in re.split(r",\s*|\s+and\s+", r["authors"] or "") if a.strip()],
                        "categories": r["categories"] or "", "comments": r.get("comments")})
    return out


def _primary(record: dict) -> str:
    return record["categories"].split(" ")[0] if record["categories"] else ""


def generate(records: list[dict], n: int, seed: int = 0):
    """Yield ``n`` Kaggle-format records, sorted by date (see the module docstring)."""
    rng = np.random.default_rng(seed)
    m = len(records)
    by_category: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_category[_primary(r)].append(i)
    pools = {c: np.asarray(ix, dtype=np.int32) for c, ix in by_category.items()}
    order = np.concatenate([rng.permutation(m) for _ in range(-(-n // m))])[:n]
    seen = np.zeros(m, dtype=bool)
    for src, (date, pid) in zip(order, stamps(n)):
        r = records[src]
        first = not seen[src]
        seen[src] = True
        if first:
            title, sentences, authors = r["title"], r["sentences"], r["authors"]
        else:
            pool = pools[_primary(r)]
            other = records[pool[rng.integers(len(pool))]]
            words, donor = r["title"].split(), other["title"].split()
            for _ in range(2):
                if words and donor:
                    words[rng.integers(len(words))] = donor[rng.integers(len(donor))]
            title = " ".join(words)
            sentences = []
            for s in r["sentences"]:
                if rng.random() < 0.5:
                    sentences.append(s)
                else:
                    d = records[pool[rng.integers(len(pool))]]["sentences"]
                    sentences.append(d[rng.integers(len(d))] if d else s)
            authors = [a if rng.random() < 0.5 or not other["authors"]
                       else other["authors"][rng.integers(len(other["authors"]))] for a in r["authors"]]
            authors = list(dict.fromkeys(authors))
        created = dt.datetime.combine(date, dt.time(12)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        yield {"id": pid, "submitter": None, "authors": _join(authors), "title": title,
               "comments": r["comments"], "journal-ref": None, "doi": None, "report-no": None,
               "categories": r["categories"], "license": None, "abstract": " ".join(sentences),
               "versions": [{"version": "v1", "created": created}], "update_date": date.isoformat(),
               "authors_parsed": [[a.rsplit(" ", 1)[-1], a.rsplit(" ", 1)[0] if " " in a else "", ""]
                                  for a in authors]}


def monthly_counts(n: int) -> list[tuple[dt.date, int]]:
    """Papers per month from START to END, growing as arXiv's submissions did: about 5,000 a month in 2007,
    8,000 in 2014 and 24,000 in 2025 (an exponential fit), scaled so that they add up to ``n``."""
    months = []
    day = START
    while day < END:
        months.append(day)
        day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    growth = np.exp(np.log(24 / 5.2) * np.arange(len(months)) / (len(months) - 1))
    counts = np.floor(n * growth / growth.sum()).astype(int)
    rest = n - int(counts.sum())
    if rest:
        counts[-rest:] += 1  # the rounding's remainder goes to the newest months
    return list(zip(months, counts.tolist()))


def stamps(n: int):
    """``(date, id)`` of each of ``n`` papers in order: the month's papers spread over its days, numbered in
    order (4 digits before 2015, 5 after, as arXiv's ids are)."""
    for month, count in monthly_counts(n):
        limit = 9_999 if month.year < 2015 else 99_999
        if count > limit:
            raise ValueError(f"{count:,} papers in {month:%Y-%m}: arXiv ids of that month have at most {limit:,}")
        days = ((month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - month).days
        width = 4 if month.year < 2015 else 5
        for j in range(count):
            yield month + dt.timedelta(days=j * days // count), f"{month:%y%m}.{j + 1:0{width}d}"


def _join(authors: list[str]) -> str:
    if len(authors) <= 1:
        return "".join(authors)
    return ", ".join(authors[:-1]) + " and " + authors[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--papers", type=int, default=2_700_000)
    parser.add_argument("--source", default=str(SHARED / "arxiv/corpus/arxiv-metadata-2025-2026.jsonl.xz"))
    parser.add_argument("--out", required=True, help="output .jsonl.gz")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    records = load(Path(args.source))
    out = Path(args.out)
    tmp = out.with_name(out.name + ".part")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=3) as handle:
        for k, record in enumerate(generate(records, args.papers, args.seed)):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            if k % 100_000 == 0:
                print(f"{k:,} / {args.papers:,}", file=sys.stderr, flush=True)
    tmp.replace(out)  # a killed run leaves no half-written corpus under the real name
    print(f"wrote {args.papers:,} papers to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
