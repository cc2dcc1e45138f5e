"""Time `musefusion demo` as a new user meets it, and write the results page the README's headline table quotes.

Runs the demo in a fresh folder with an empty cache (the venv already built), its output redirected to a log as in
a plain shell, and measures: the whole wall time, when the log first gives the whole run's ETA, and each stage
(from the report's sections). Then writes ``docs/results/demo.md`` (command, commit, date, machine, wall time) with
the headline table, and copies that table into the README between its ``headline`` markers, so the README never
holds a number typed by hand.

    python bench/demo.py                      # about ten minutes on 2 idle cores
    python bench/demo.py --out /tmp/demo-bench --keep
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_page import write_page  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- headline: written by bench/demo.py from docs/results/demo.md -->", "<!-- /headline -->"
#: the stages the demo must show in its report (issue: every stage of the pipeline once)
SECTIONS = ("## Table 2", "## Table 4", "## What the fusion is fitted on", "## Fusion selection", "## Table 6",
            "## Submission", "## Provenance")


def scored(value: object) -> str:
    if value is None:
        return "withheld"
    ccc, interval = value  # type: ignore[misc]
    return f"{ccc:.3f} {interval}"


def versus(verdict: str) -> str:
    """A paired difference's verdict in the headline's words (a: the submission, b: the baseline)."""
    return {"a higher": "submission higher", "b higher": "baseline higher"}.get(verdict, verdict)


def headline_markdown(cfg: object, out: Path) -> str:
    from musefusion.evaluation import paper
    from musefusion.pipelines.reproduce import headline_rows

    lines = ["| target | musefusion submission | paper's fusion, run here | MuSe 2021 baseline, run here | "
             "submission − baseline (paired) | paper (real data) | baseline (real data) |", "|---|---|---|---|---|---|---|"]
    for r in headline_rows(cfg, out):  # type: ignore[arg-type]
        d = r.versus_baseline
        lines.append(f"| {r.target} | {scored(r.submission)} ({r.chosen}) | {scored(r.paper_fusion)} | "
                     f"{scored(r.baseline)} ({paper.FEATURE_LABELS.get(r.baseline_row, r.baseline_row)}) | "
                     f"{'-' if d is None else f'{d.delta:+.3f} {d.interval}: {versus(d.verdict)}'} | "
                     f"{r.paper_real if r.paper_real is not None else '-'} | "
                     f"{r.baseline_real if r.baseline_real is not None else '-'} |")
    return "\n".join(lines)


def update_readme(table: str, page: str) -> None:
    text = README.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{README}: no headline markers ({START} ... {END}); add them where the table goes.")
    head, rest = text.split(START, 1)
    _old, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{table}\n\n{page}\n{END}{tail}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--no-readme", action="store_true", help="write the results page only")
    args = ap.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="musefusion-demo-bench-"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"{work} is not empty: give a new --out.")
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MUSEFUSION_CACHE": str(work / "cache")}
    env.pop("COLUMNS", None)
    demo_dir, log = work / "demo", work / "demo.log"
    cmd = [sys.executable, "-m", "musefusion", "demo", "--out", str(demo_dir)]
    t0 = time.perf_counter()
    first_eta = first_projection = None
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            now = time.perf_counter() - t0
            if first_projection is None and line.startswith("projected reproduce"):
                first_projection = now
            if first_eta is None and "whole run eta" in line.lower():
                first_eta = now
        rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"musefusion demo exited {rc}; log: {log}")

    from musefusion.pipelines.reproduce import ReproduceConfig

    out = demo_dir / "reproduce-stress"
    report = (out / "report.md").read_text()
    missing = [s for s in SECTIONS if s not in report]
    stages = re.findall(r"^(?:unimodal runs|folds|fusion): \d+/\d+ ", log.read_text(), re.MULTILINE)
    cfg = ReproduceConfig(root=demo_dir / "data", profile="demo")
    table = headline_markdown(cfg, out)
    notes = (f"`musefusion demo` on 2 workers, output redirected to a file, empty cache: synthesis, data check, "
             f"the run's projection, then `reproduce --profile demo` (every stage: the unimodal rows of Table 2 "
             f"with the baseline peers, out-of-fold folds, the fusion rows, the selection, a validated submission, "
             f"Table 6 and the report). Exit {rc}; wall time {wall / 60:.1f} min; the projected total was printed "
             f"after {first_projection or float('nan'):.0f} s and the first line with the whole run's ETA after "
             f"{first_eta or float('nan'):.0f} s; report sections missing: {', '.join(missing) or 'none'}; "
             f"job progress lines: {len(stages)}, every one naming its run.")
    body = ("Test CCC against the hidden synthetic test labels, with the 95 % subject-level bootstrap interval; "
            "*submission − baseline*: the difference on the same test subjects with its paired bootstrap interval "
            "(indistinguishable where it contains 0); the last two columns are the paper's Table 6 on the real Ulm-TSST test set (a different corpus: "
            "compare patterns, not values).\n\n" + table)
    page = write_page("demo", "The demo: `musefusion demo` timed, and its headline table", body, wall, notes)
    if not args.no_readme:
        update_readme(table, "From [docs/results/demo.md](docs/results/demo.md) (written by `bench/demo.py`: "
                             "command, commit, date, machine, wall time).")
    print(page.read_text())
    if not args.keep and args.out is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
