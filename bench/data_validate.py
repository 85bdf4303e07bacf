"""Measure `tunesmith data validate` on a large synthetic JSONL beside the previous release's code.

Usage: python bench/data_validate.py [--n 1000000] [--baseline-ref REF | --no-baseline] [--stats]

Builds N short chat examples (1% exact duplicates, 1% near-duplicates) in a temp dir, exports ``src/`` of
``--baseline-ref`` with ``git archive`` into a temp dir, and runs the same call, ``validate_file(path,
model=<bundled SmolLM2>)`` (what `tunesmith data validate FILE` runs, tokenizer loading included), once per
side, each in a fresh subprocess (``PYTHONPATH=<side>/src``) so that peak RSS is that run's own. Prints
examples/s, CPU seconds (all threads) and peak RSS of each side, and the ratios. On a shared machine wall time
is noisy: compare the two sides of one run, and read the CPU seconds beside the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE_REF = "7921dac"  # the commit before the vectorised validate (issue 15, item 6)

RUNNER = """
import json, resource, sys, time
import tunesmith
from tunesmith.data.validate import validate_file
from tunesmith.models.bundled import BUNDLED_NAME
start = time.perf_counter()
report = validate_file(sys.argv[1], model=BUNDLED_NAME)
seconds = time.perf_counter() - start
if sys.argv[2] == "stats":
    from tunesmith.data.stats import compute_stats
    start_stats = time.perf_counter()
    compute_stats(sys.argv[1], model=BUNDLED_NAME)
    stats_seconds = time.perf_counter() - start_stats
else:
    stats_seconds = None
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "stats_seconds": stats_seconds, "cpu": usage.ru_utime + usage.ru_stime,
                  "rss_mib": usage.ru_maxrss / 1024, "n_examples": report.n_examples,
                  "counts": report.counts(), "package": tunesmith.__file__}))
"""


def build(path: Path, n: int) -> None:
    """Write ``n`` examples; every 100th repeats the one before exactly, every 100th+50 in upper case."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            j = i - 1 if i % 100 in (0, 50) and i > 0 else i
            user = f"Customer {j} asks: how do I reset router model R{j % 97} after a power cut in room {j}?"
            if i % 100 == 50 and i >= 50:
                user = user.upper()
            answer = f"Hold the reset button of R{j % 97} for ten seconds, then wait for the light {j % 7}."
            messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
            f.write(json.dumps({"messages": messages}) + "\n")


def export_source(ref: str, dest: Path) -> Path:
    """``src/`` of git ``ref`` extracted under ``dest``; returns the ``src`` folder."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "src"


def run_side(src: Path, data: Path, stats: bool) -> dict:
    """Validate ``data`` with the package under ``src`` in a fresh interpreter; its measurements."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    mode = "stats" if stats else "-"
    out = subprocess.run([sys.executable, "-c", RUNNER, str(data), mode], env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"the run with {src} failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(result["package"]).is_relative_to(src), f"imported {result['package']}, not {src}"
    return result


def describe(name: str, n: int, r: dict) -> str:
    """One line of results for one side."""
    line = (
        f"{name:>8}: {n / r['seconds']:>9,.0f} examples/s ({r['seconds']:,.1f} s wall, {r['cpu']:,.1f} s CPU), "
        f"peak RSS {r['rss_mib']:,.0f} MiB"
    )
    if r["stats_seconds"]:
        line += f"; stats {n / r['stats_seconds']:,.0f} examples/s"
    return line + f"\n{'':>10}issues {r['counts']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="examples to generate")
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the code to compare with")
    parser.add_argument("--no-baseline", action="store_true", help="measure the working tree only")
    parser.add_argument("--stats", action="store_true", help="also time `data stats` on each side")
    args = parser.parse_args()
    info = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} cores visible")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "big.jsonl"
        build(data, args.n)
        print(f"file: {args.n:,} examples, {data.stat().st_size / 2**20:,.1f} MiB")
        current = run_side(ROOT / "src", data, args.stats)
        print(describe("current", args.n, current), flush=True)
        if args.no_baseline:
            return
        (Path(tmp) / "base").mkdir()
        base = run_side(export_source(args.baseline_ref, Path(tmp) / "base"), data, args.stats)
        print(describe(args.baseline_ref, args.n, base))
    print(
        f"ratio: {base['seconds'] / current['seconds']:.2f}x examples/s (wall), "
        f"{base['cpu'] / current['cpu']:.2f}x less CPU, "
        f"peak RSS {current['rss_mib']:,.0f} vs {base['rss_mib']:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
