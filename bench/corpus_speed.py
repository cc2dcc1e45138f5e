"""Wall time and peak memory of synthesising and reading the default synthetic corpus.

Synthesises ``SynthConfig()`` (69 subjects, 41/14/14, about 5 min each) into a temporary folder, then reads it
with ``load_corpus`` for each feature set: without the cache, with a cold cache (the load that writes the
``.npz``) and with the cache warm. Every stage runs in a fresh Python process, so each peak RSS is that stage's
own (it includes the interpreter and numpy/pandas/pyarrow, shown on the ``baseline`` line).

Usage::

    .venv/bin/python bench/corpus_speed.py [--features egemaps vggface bio] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _stage(name: str, root: Path, feature: str | None) -> dict:
    """Run one stage in this process; return its wall time, peak RSS and a few facts."""
    import numpy as np

    from musefusion import DataConfig, SynthConfig, load_corpus, synthesize

    info: dict = {}
    cache_dir = root / "cache"
    t0 = time.perf_counter()
    if name == "baseline":
        pass
    elif name == "synth":
        corpus = synthesize(root / "data", SynthConfig())
        files = [p for p in corpus.rglob("*") if p.is_file()]
        info = {"files": len(files), "mib": sum(p.stat().st_size for p in files) / 2**20}
    else:
        cfg = DataConfig(root=root / "data", features=(feature,), cache=name != "load", cache_dir=cache_dir)
        before = set(cache_dir.glob("*.npz"))
        data = load_corpus(cfg)
        steps = sum(len(s) for part in data.sequences.values() for s in part)
        info = {"d_in": data.d_in, "steps": steps,
                "filled": float(data.fill_report["n_filled"].sum() / data.fill_report["n_steps"].sum()),
                "checksum": float(np.float64(sum(float(np.abs(s.x).sum()) for part in data.sequences.values()
                                                 for s in part)))}
        written = set(cache_dir.glob("*.npz")) - before
        if written:
            info["cache_mib"] = sum(p.stat().st_size for p in written) / 2**20
    return {"wall_s": time.perf_counter() - t0, "peak_mib": _peak_rss_mib(), **info}


def _run_stage(name: str, root: Path, feature: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--stage", name, "--root", str(root)]
    if feature:
        cmd += ["--feature", feature]
    env = {**os.environ, "MUSEFUSION_CACHE": str(root / "cache")}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", nargs="+", default=["egemaps", "vggface", "bio"])
    parser.add_argument("--keep", type=Path, help="Write the corpus and cache here and keep them.")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--feature", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(_stage(args.stage, args.root, args.feature)))
        return

    root = args.keep or Path(tempfile.mkdtemp(prefix="musefusion-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; corpus in {root}")
        r = _run_stage("baseline", root)
        print(f"baseline (interpreter + imports): peak RSS {r['peak_mib']:.0f} MiB")
        r = _run_stage("synth", root)
        print(f"synth: {r['wall_s']:.1f} s, peak RSS {r['peak_mib']:.0f} MiB "
              f"(69 subjects, {r['files']} files, {r['mib']:.0f} MiB on disk)")
        for feature in args.features:
            labels = {"load": "no cache", "load_cold": "cold cache, writes npz", "load_warm": "warm cache"}
            results = {}
            for stage, label in labels.items():
                r = results[stage] = _run_stage(stage, root, feature)
                extra = f", wrote {r['cache_mib']:.0f} MiB npz" if "cache_mib" in r else ""
                print(f"load {feature} ({label}): {r['wall_s']:.2f} s, peak RSS {r['peak_mib']:.0f} MiB "
                      f"(d_in {r['d_in']}, {r['steps']} steps, {r['filled']:.1%} filled{extra})")
            if len({round(r["checksum"], 3) for r in results.values()}) != 1:
                raise SystemExit(f"cached and uncached loads of {feature} differ: {results}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
