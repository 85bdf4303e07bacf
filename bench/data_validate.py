"""Measure `tunesmith data validate` and `data stats` on a large synthetic JSONL: examples/s and peak RSS.

Usage: python bench/data_validate.py [--n 1000000] [--no-stats]

Builds N short chat examples (1% exact duplicates, 1% near-duplicates) in a temp dir, then runs the real
entry points with the bundled SmolLM2 tokenizer. Peak RSS is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from tunesmith.data.stats import compute_stats
from tunesmith.data.validate import validate_file
from tunesmith.models.load import load_tokenizer


def build(path: Path, n: int) -> None:
    """Write ``n`` examples; every 100th repeats the one before exactly, every 100th+50 in upper case."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            j = i - 1 if i % 100 in (0, 50) and i > 0 else i
            user = f"Customer {j} asks: how do I reset router model R{j % 97} after a power cut in room {j}?"
            if i % 100 == 50 and i >= 50:
                user = user.upper()
            answer = f"Hold the reset button of R{j % 97} for ten seconds, then wait for the light {j % 7}."
            f.write(json.dumps({"messages": [{"role": "user", "content": user},
                                             {"role": "assistant", "content": answer}]}) + "\n")


def peak_rss_mib() -> float:
    """Maximum resident set size so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="examples to generate")
    parser.add_argument("--no-stats", action="store_true", help="skip the stats run")
    args = parser.parse_args()
    tok = load_tokenizer()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        build(path, args.n)
        size = path.stat().st_size / 2**20
        print(f"file: {args.n:,} examples, {size:,.1f} MiB; baseline RSS {peak_rss_mib():,.0f} MiB")
        t = time.perf_counter()
        report = validate_file(path, tokenizer=tok, progress=True)
        dt = time.perf_counter() - t
        print(f"validate: {args.n / dt:,.0f} examples/s ({dt:,.1f} s), peak RSS {peak_rss_mib():,.0f} MiB, "
              f"issues {report.counts()}")
        if not args.no_stats:
            t = time.perf_counter()
            stats = compute_stats(path, tokenizer=tok, progress=True)
            dt = time.perf_counter() - t
            print(f"stats: {args.n / dt:,.0f} examples/s ({dt:,.1f} s), peak RSS {peak_rss_mib():,.0f} MiB, "
                  f"median tokens {stats.tokens.median:.0f}")


if __name__ == "__main__":
    main()
