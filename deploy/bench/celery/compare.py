#!/usr/bin/env python3
"""Issue 10's comparison in one command: Celery + RabbitMQ, then `workmesh bench dispatch --store all`, N rounds.

Each round runs, back to back, ``celery_bench.py --json`` (the Celery side, its own scratch venv,
broker and worker) and ``workmesh bench dispatch --store all --jobs N --concurrency C --json``
(memory, SQLite and, with ``--database-url``, PostgreSQL), keeps both JSON outputs in ``--out``,
and prints each round's figures with the load average and the ratios the issue's targets are
stated in (SQLite against that round's Celery). Standard library only; it measures, it asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

# (workmesh path, figure, how it compares to Celery's, target ratio) of issue 10, for the SQLite default.
# SubmitJob + WatchJob is held to its target both ways a client can watch: one event per message
# (``unary``) and with WatchJobRequest.batch (``unary_batch``, absent from older outputs).
TARGETS = (
    ("stream", "burst_jobs_per_s", ">=", 2.0),
    ("unary", "burst_jobs_per_s", ">=", 1.0),
    ("unary_batch", "burst_jobs_per_s", ">=", 1.0),
    ("stream", "p50_ms", "<=", 0.8),
    ("unary", "p50_ms", "<=", 0.8),
    ("unary_batch", "p50_ms", "<=", 0.8),
)


def ratios(celery: dict, workmesh: dict) -> list[dict]:
    """The issue's targets for one round: SQLite's figure over Celery's, met or not.

    `celery` is celery_bench.py's JSON (a key per worker setting), `workmesh` that of
    `workmesh bench dispatch --store all --json` (a key per store). Each figure is compared with
    Celery's best of the settings measured (highest burst, lowest p50: the fairest to Celery).
    """
    rows = []
    for path, figure, sense, target in TARGETS:
        if f"{path}_{figure}" not in workmesh["sqlite"]:
            continue  # a path that run did not measure
        pick = max if sense == ">=" else min
        name, best = pick(celery.items(), key=lambda item: item[1][f"celery_{figure}"])  # noqa: B023
        ours, theirs = workmesh["sqlite"][f"{path}_{figure}"], best[f"celery_{figure}"]
        ratio = ours / theirs
        rows.append(
            {
                "figure": f"sqlite {path}_{figure} / {name} celery_{figure}",
                "workmesh": ours,
                "celery": theirs,
                "ratio": round(ratio, 2),
                "target": f"{sense} {target}",
                "met": ratio >= target if sense == ">=" else ratio <= target,
            }
        )
    return rows


def _run_json(cmd: list[str], out: Path) -> dict:
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, cwd=REPO)
    out.write_text(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(f"compare: {cmd[0]} exited {proc.returncode} (its output in {out})")
    return json.loads(proc.stdout)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _summary(store: str, figures: dict) -> str:
    paths = [p for p in ("stream", "unary", "unary_batch", "celery") if f"{p}_burst_jobs_per_s" in figures]
    parts = [
        f"{p} burst {figures[f'{p}_burst_jobs_per_s']:,.0f} jobs/s p50 {figures[f'{p}_p50_ms']:.2f} "
        f"p99 {figures[f'{p}_p99_ms']:.2f} ms"
        for p in paths
    ]
    return f"  {store:<16} load {figures.get('load_average', '?'):<16} " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="Celery then workmesh, this many times (3)")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--database-url", default="", help="PostgreSQL for workmesh's --store all as well")
    parser.add_argument("--workmesh", default=str(REPO / ".venv" / "bin" / "workmesh"), help="the workmesh CLI")
    parser.add_argument("--python", default=sys.executable, help="the Python that runs celery_bench.py")
    parser.add_argument("--out", default="", help="directory for each run's JSON (default: a new temporary one)")
    parser.add_argument("celery_args", nargs="*", help="after --: more arguments of celery_bench.py")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="workmesh-celery-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    size = ["--jobs", str(args.jobs), "--concurrency", str(args.concurrency)]
    ours = [args.workmesh, "bench", "dispatch", "--store", "all", *size, "--json"]
    if args.database_url:
        ours += ["--database-url", args.database_url]
    theirs = [args.python, str(HERE / "celery_bench.py"), *size, "--json", *args.celery_args]
    summary = []
    for n in range(1, args.rounds + 1):
        before = _load()
        celery = _run_json(theirs, out / f"celery-{n}.json")
        workmesh = _run_json(ours, out / f"workmesh-{n}.json")
        summary.append({"round": n, "load_before": before, "load_after": _load(), "targets": ratios(celery, workmesh)})
        print(f"round {n} (load before {before}, after {_load()}):")
        for store, figures in {**celery, **workmesh}.items():
            print(_summary(store, figures))
        for row in summary[-1]["targets"]:
            met = "met" if row["met"] else "MISSED"
            print(f"  {row['figure']:<58} {row['ratio']:>6.2f}  target {row['target']:<6} {met}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"JSON of every run and summary.json in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
