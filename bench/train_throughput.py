"""Claim: tunesmith LoRA training is faster (real tokens/s) and leaner (peak RSS) than the peer pipelines,
at equal or better eval accuracy.

Runs, in one go and on the same data and model (SmolLM2-135M-Instruct, sentiment chats):
tunesmith (`python -m tunesmith train` on a minimal config: the data, the output dir and the step limit;
every other knob is a TrainConfig default, so the measured path is the one users get),
../shared/bench/peer_seed_pipeline.py and ../shared/bench/peer_trl_sft.py, each as a subprocess with a step
limit. Every pipeline gets the same precision policy, tunesmith's `precision: auto`: bf16 only where
`use_bf16` finds native bf16 (CUDA bf16, or a CPU with AVX512-BF16/AMX), fp32 elsewhere (emulated bf16 on an
AVX2-only CPU is many times slower, and forcing it on a peer would flatter the ratio). Prints the CPU's bf16
capability and the chosen precision, then real (non-padding) tokens/s, peak RSS and eval accuracy for each,
the ratios, and model FLOPs utilisation against this machine's measured matmul throughput in that precision.

usage: python bench/train_throughput.py [--steps 30] [--eval-limit 60] [--no-peers]
Numbers on a shared machine are noisy; run it on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS = (REPO.parent / "shared" / "bench").resolve()
TRAIN = PEERS / "data" / "sentiment-train.jsonl"
EVAL = PEERS / "data" / "sentiment-eval.jsonl"


def chosen_precision() -> str:
    """``bf16`` or ``fp32``: what tunesmith's ``precision: auto`` picks on this machine (for every pipeline)."""
    from tunesmith.train.config import TrainConfig
    from tunesmith.train.setup import use_bf16

    return "bf16" if use_bf16(TrainConfig(train_file=TRAIN)) else "fp32"


def bf16_capability() -> dict:
    """The facts behind the precision choice: CPU model, its bf16 flags, torch's checks, any CUDA device."""
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}  # the last CPU's entries; all cores match
    flags = set(fields.get("flags", "").split())
    return {
        "cpu": fields.get("model name") or platform.processor() or platform.machine(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "amx_tile": "amx_tile" in flags,
        "torch_avx512_bf16": bool(torch.cpu._is_avx512_bf16_supported()),
        "torch_amx": bool(torch.cpu._is_amx_tile_supported()),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def matmul_tflops(precision: str, n: int = 1024, reps: int = 20) -> float:
    """Measured matmul throughput of this machine in ``precision`` (TFLOP/s)."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def warm_peer_cache() -> None:
    """Convert the peers' model cache before timing them, so no peer pays GGUF de-quantisation in its run."""
    code = "import peers_common; peers_common.plain_model_dir()"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PEERS, env={**os.environ, "PYTHONPATH": str(PEERS)})


def run_tunesmith(steps: int, eval_limit: int, out: Path) -> dict:
    """Train with tunesmith's defaults in a subprocess (steps <= 0: one full epoch), then score eval answers.

    The config names only the data, the output dir and the step limit: model, batch size (8), LoRA, packing,
    precision and attention are the TrainConfig defaults (no benchmark-only tuning).
    """
    config = out.parent / "bench-train.yaml"
    config.write_text(json.dumps({"train_file": str(TRAIN), "output_dir": str(out), "max_steps": steps or -1}))
    cmd = [sys.executable, "-m", "tunesmith", "train", str(config)]
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    run = json.loads((out / "run.json").read_text())
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train_s = rows[-1]["elapsed_s"]
    return {
        "peer": "tunesmith",
        "steps": run["steps"],
        "train_seconds": train_s,
        "real_tokens": run["total_tokens"],
        "real_tokens_per_s": round(run["total_tokens"] / train_s, 1),
        "peak_rss_mb": run["peak_rss_mb"],
        "bf16": run["bf16"],
        "packing": run.get("packing"),
        "attention": run.get("attention"),
        **score_adapter(Path(run["adapter_dir"]), eval_limit),
    }


def score_adapter(adapter: Path, eval_limit: int) -> dict:
    """Eval accuracy of the adapter, scored exactly as the peers score theirs."""
    sys.path.insert(0, str(PEERS))
    from peers_common import generate_answers, read_jsonl, score

    from tunesmith.models.load import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(adapter=adapter, device="cpu")
    evalset = read_jsonl(EVAL)[:eval_limit] if eval_limit else read_jsonl(EVAL)
    return score(evalset, generate_answers(model, tok, [e["messages"][:-1] for e in evalset]))


def run_peer(script: str, steps: int, eval_limit: int, *extra: str) -> dict:
    """One peer baseline as a subprocess; its JSON report line."""
    cmd = [
        sys.executable,
        script,
        "--train",
        str(TRAIN),
        "--eval",
        str(EVAL),
        "--max-steps",
        str(steps),
        "--eval-limit",
        str(eval_limit),
        *extra,
    ]
    proc = subprocess.run(
        cmd,
        check=True,
        cwd=PEERS,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PEERS)},
    )
    return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--steps",
        type=int,
        default=30,
        help="optimizer steps per pipeline (8 examples/step; "
        "the seed pipeline takes 16 examples/step and gets half as many)",
    )
    ap.add_argument("--eval-limit", type=int, default=60, help="eval examples scored (0: all 200)")
    ap.add_argument("--no-peers", action="store_true", help="only run tunesmith")
    ap.add_argument(
        "--epoch", action="store_true", help="train tunesmith for one full epoch (accuracy after one epoch)"
    )
    a = ap.parse_args()
    precision, capability = chosen_precision(), bf16_capability()
    tflops = matmul_tflops(precision)
    if not a.no_peers:
        warm_peer_cache()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        results = [run_tunesmith(0 if a.epoch else a.steps, a.eval_limit, Path(tmp) / "run")]
    if results[0]["bf16"] != (precision == "bf16"):
        sys.exit(f"tunesmith trained with bf16={results[0]['bf16']}, expected the {precision} policy")
    if not a.no_peers:
        seed_precision = ["--bf16"] if precision == "bf16" else []
        results.append(run_peer("peer_seed_pipeline.py", max(a.steps // 2, 1), a.eval_limit, *seed_precision))
        results.append(run_peer("peer_trl_sft.py", a.steps, a.eval_limit, "--precision", precision))
    n_params = 134.5e6  # SmolLM2-135M; LoRA step ~ 4 * N FLOPs/token (forward 2N + input grads 2N)
    ours = results[0]
    flags = ", ".join(f"{k} {'yes' if capability[k] else 'no'}" for k in ("avx512_bf16", "amx_bf16", "amx_tile"))
    print(f"CPU: {capability['cpu']} ({flags}); CUDA: {capability['cuda'] or 'none'}")
    print(f"precision for every pipeline: {precision} (tunesmith precision: auto; bf16 only where native)")
    print(
        f"tunesmith batches: {'packed rows' if ours['packing'] else 'length-grouped padding'}, "
        f"attention {ours['attention']} (TrainConfig defaults)"
    )
    print(f"machine {precision} matmul: {tflops:.2f} TFLOP/s")
    print(f"{'pipeline':<22}{'tok/s':>9}{'peak MB':>9}{'acc':>7}{'MFU':>8}{'speedup':>9}{'RSS ratio':>10}")
    for r in results:
        mfu = 4 * n_params * r["real_tokens_per_s"] / (tflops * 1e12)
        print(
            f"{r['peer']:<22}{r['real_tokens_per_s']:>9.1f}{r['peak_rss_mb']:>9.0f}{r['accuracy']:>7.3f}"
            f"{mfu:>8.1%}{ours['real_tokens_per_s'] / r['real_tokens_per_s']:>8.2f}x"
            f"{r['peak_rss_mb'] / ours['peak_rss_mb']:>9.2f}x"
        )
    summary = {"precision": precision, "capability": capability, "matmul_tflops": round(tflops, 3)}
    print(json.dumps({**summary, "results": results}))


if __name__ == "__main__":
    main()
