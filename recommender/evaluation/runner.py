"""Run protocols on their development or test cutoffs and keep every case's result as JSON.

One file per protocol and split (``<out>/<split>-<protocol>.json``), rewritten
atomically after every (variant, cutoff), so a killed run resumes where it
stopped and a finished one is not run again unless its configuration changed.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from recommender.storage import artifacts
from recommender.features import FeatureParams
from recommender.learning.models import TrainParams
from recommender.evaluation import authors, citations, curator, readers
from recommender.evaluation.cache import FeatureCache
from recommender.evaluation.grid import BASELINES, CENTER, DEFAULT, LITE, LITE_VARIANTS, RECOMMEND_VARIANTS, SIMILAR_VARIANTS, \
    TEST_EMBEDDING_VARIANTS, WITH_EMBEDDINGS, Variant, variants_for
from recommender.evaluation.metrics import paired
from recommender.evaluation.run import evaluate
from recommender.evaluation.tasks import Task, load_corpus

PROTOCOLS = ("authors", "readers", "curator", "citations")


@dataclasses.dataclass(frozen=True)
class Sources:
    corpus: Path
    citations: Path
    curator: Path


def build_tasks(protocol: str, split: str, sources: Sources, users: int = 150, queries: int = 100,
                corpus: list | None = None) -> list[Task]:
    """The protocol's tasks for ``split`` ("dev" or "test"), each one cutoff, week group or fold."""
    dev = split == "dev"
    if protocol == "authors":
        papers = corpus if corpus is not None else load_corpus(sources.corpus)
        return [authors.build_task(papers, dt.date.fromisoformat(c), n_users=users, split=split)
                for c in (authors.DEV_CUTOFFS if dev else authors.TEST_CUTOFFS)]
    if protocol == "curator":
        papers = corpus if corpus is not None else load_corpus(sources.corpus)
        picks = curator.load_picks(sources.curator)
        return [curator.build_task(papers, picks, curator.DEV_WEEKS if dev else curator.TEST_WEEKS, split)]
    data = citations.load_data(sources.citations)
    if protocol == "readers":
        return [readers.build_task(data, dt.date.fromisoformat(c), n_users=users, split=split)
                for c in (readers.DEV_CUTOFFS if dev else readers.TEST_CUTOFFS)]
    if protocol == "citations":
        return [citations.build_task(data, f, queries, split)
                for f in (citations.DEV_FOLDS if dev else citations.TEST_FOLDS)]
    raise ValueError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")


def test_variants(protocol: str, tuned_lite: Variant | None, embeddings: bool = False) -> tuple[Variant, ...]:
    """What the test cutoffs report: baselines, lite as shipped and tuned, and Paperfeed's defaults (with
    ``embeddings``, also the defaults plus the optional embedding block)."""
    lite = tuple(v for v in (LITE_VARIANTS[0], tuned_lite) if v is not None)
    if protocol == "citations":
        chosen = BASELINES[:1] + lite + tuple(v for v in SIMILAR_VARIANTS if v.name in (DEFAULT, "text only"))
        return chosen + ((TEST_EMBEDDING_VARIANTS["similar"],) if embeddings else ())
    chosen = BASELINES + lite + tuple(v for v in RECOMMEND_VARIANTS
                                      if v.name in (DEFAULT, "previous release (text only, C 0.3)"))
    return chosen + ((TEST_EMBEDDING_VARIANTS["paperfeed"],) if embeddings else ())


def best_lite(dev_results: dict) -> Variant | None:
    """The lite variant with the best pooled development nDCG@100 (None when the recipe was not tuned)."""
    scores = {}
    for v in LITE_VARIANTS:
        entry = dev_results.get("variants", {}).get(v.name)
        if entry:
            values = [c["ndcg@100"] for t in entry["per_task"].values() for c in t["per_case"]]
            scores[v.name] = sum(values) / len(values)
    if not scores:
        return None
    name = max(scores, key=scores.get)
    chosen = next(v for v in LITE_VARIANTS if v.name == name)
    return dataclasses.replace(chosen, name=f"{LITE}, tuned ({name.removeprefix('lite, ') if name != LITE else 'as shipped'})")


def run_protocol(protocol: str, split: str, variants: Sequence[Variant], tasks: Sequence[Task],
                 features: FeatureParams, train: TrainParams, cache: FeatureCache, out: Path,
                 progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Run every variant on every task; results accumulate in ``out/<split>-<protocol>.json``."""
    path = Path(out) / f"{split}-{protocol}.json"
    results = artifacts.read_json(path) if path.exists() else {}
    results.setdefault("variants", {})
    _forget_stale(results, tasks, variants)
    results.update(protocol=protocol, split=split, tasks=[t.name for t in tasks],
                   task_fingerprints={t.name: fingerprint(t) for t in tasks},
                   features=dataclasses.asdict(features), train=dataclasses.asdict(train))
    center = None
    for variant in variants:
        method = variant.method(features, train)
        config = json.loads(json.dumps(method.config(), default=str))
        if variant.name == CENTER:
            center = config
        elif variant.name != DEFAULT and variant.kind in ("paperfeed", "similar") and config == center:
            results["variants"].pop(variant.name, None)  # the center itself: not a separate row
            continue
        entry = results["variants"].get(variant.name)
        if not entry or entry.get("config") != config:
            entry = {"why": variant.why, "kind": variant.kind, "config": config, "per_task": {}}
            if variant.name == DEFAULT:  # the defaults may equal a row already run: same method, same results
                twin = next((e for n, e in results["variants"].items()
                             if n != DEFAULT and e.get("kind") == variant.kind and e.get("config") == config), None)
                if twin is not None:
                    entry["per_task"] = dict(twin["per_task"])
        results["variants"][variant.name] = entry
        for task in tasks:
            if task.name in entry["per_task"]:
                continue
            outcome = evaluate([method], task, cache, progress=progress)[method.name]
            entry["per_task"][task.name] = {k: outcome[k] for k in ("per_case", "seconds_per_case", "recall_curve")}
            artifacts.write_json(path, results)
    # Rows in the grid's order, whatever order they were first run in.
    results["variants"] = {v.name: results["variants"][v.name] for v in variants if v.name in results["variants"]}
    artifacts.write_json(path, results)
    return results


def fingerprint(task: Task) -> str:
    """The task's papers and cases: results saved for another sample of cases must not be paired with these."""
    text = task.key + "\n" + "\n".join(c.id for c in task.cases)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def _forget_stale(results: dict, tasks: Sequence[Task], variants: Sequence[Variant]) -> None:
    """Drop saved results that no longer belong: other cases under the same task name, tasks and variants
    that this run does not ask for (so the file is exactly this run's)."""
    saved = results.get("task_fingerprints", {})
    current = {t.name: fingerprint(t) for t in tasks}
    wanted = {v.name for v in variants}
    for name in list(results["variants"]):
        if name not in wanted:
            del results["variants"][name]
            continue
        per_task = results["variants"][name]["per_task"]
        for task_name in list(per_task):
            if task_name not in current or saved.get(task_name) != current[task_name]:
                del per_task[task_name]


def tune(protocol: str, tasks, features, train, cache, out, progress=None) -> dict:
    return run_protocol(protocol, "dev", variants_for(protocol), tasks, features, train, cache, out, progress)


def pooled(entry: dict, metric: str = "ndcg@100") -> list[float]:
    """One variant's per-case values over all its tasks, in a fixed order (tasks, then cases)."""
    return [c[metric] for name in sorted(entry["per_task"]) for c in entry["per_task"][name]["per_case"]]


def compare(results: dict, a: str, b: str, metric: str = "ndcg@100", task: str | None = None) -> dict:
    """Paired comparison of variant ``a`` against ``b`` on the same cases (one task, or pooled)."""
    ea, eb = results["variants"][a], results["variants"][b]
    if task is not None:
        va = [c[metric] for c in ea["per_task"][task]["per_case"]]
        vb = [c[metric] for c in eb["per_task"][task]["per_case"]]
    else:
        va, vb = pooled(ea, metric), pooled(eb, metric)
    return paired(va, vb)
