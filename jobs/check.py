"""``paperfeed check [--repair]``: verify the stores, features and user models (see ``recommender.storage.check``).

Exit codes: 0 when everything is healthy, or when ``--repair`` repaired every
problem it found; 1 when problems remain (found without ``--repair``, or ones it
cannot repair, such as a damaged user database); 2 when the check itself failed.
``--repair`` holds every job lock, so it never runs beside import, fetch, compute or train.
"""
from __future__ import annotations

from recommender.storage.check import check

from .output import emit
from .progress import steps

SHOW = 20  # problems listed per section in the text report (--json lists all)


def add_arguments(parser) -> None:
    parser.add_argument("--repair", action="store_true",
                        help="quarantine damaged paper rows and user models, repoint CURRENT to a complete generation, "
                             "remove stale temp files; keeps everything that can be read")
    parser.add_argument("--quick", action="store_true",
                        help="SQLite quick_check instead of integrity_check, and only the current generation")


def run(args, settings) -> int:
    report = check(settings, repair=args.repair, quick=args.quick, progress=steps("check"))
    emit(args, report.to_dict(), render(report))
    return report.exit_code


def render(report) -> str:
    lines = []
    for section in report.sections:
        mark = "ok" if not section.problems else ("repaired" if all(p.action for p in section.problems) else "PROBLEM")
        lines.append(f"{section.area:<9} {mark:<8} {section.summary}  [{section.path}]")
        for problem in section.problems[:SHOW]:
            action = f" -> {problem.action}" if problem.action else ""
            lines.append(f"  - {problem.item}: {problem.problem}{action}")
        if len(section.problems) > SHOW:
            lines.append(f"  ... and {len(section.problems) - SHOW} more (--json lists them all)")
    found, left = len(report.problems), len(report.unrepaired)
    if not found:
        lines.append("healthy: no problems found")
    elif report.repair:
        lines.append(f"{found} problem(s) found, {found - left} repaired" + (f", {left} need a person" if left else ""))
    else:
        lines.append(f"{found} problem(s) found: run `paperfeed check --repair` to fix what can be fixed")
    return "\n".join(lines)
