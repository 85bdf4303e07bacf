"""Which inference queue a server runs, and how many torch threads it uses.

``build_batcher`` picks the queue ``ServeSettings.engine`` names: the continuous-batching engine (default), the
static batcher, or vLLM (``serve/vllm_batcher.py``; vllm itself is imported only when that engine starts).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from tunesmith.serve.batcher import Batcher, ContinuousBatcher
from tunesmith.serve.inference import ModelHost
from tunesmith.serve.vllm_batcher import VllmBatcher

log = logging.getLogger("tunesmith.batcher")


def build_batcher(host: ModelHost, settings: Any) -> Any:
    """The inference queue ``settings.engine`` names, torch using ``settings.inference_threads`` (0: cores - 1)."""
    import torch

    # Prompts are tokenized one at a time in request threads beside the model thread; the tokenizer's own
    # thread pool (batch encodes only) would compete with torch's threads for the same cores.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(inference_threads(settings.inference_threads))
    log.info(
        "chat engine: %s, %s weights, max %d rows, %d torch threads of %d usable cores, TOKENIZERS_PARALLELISM=%s",
        settings.engine,
        host.dtype,
        settings.max_batch_size,
        torch.get_num_threads(),
        usable_cores(),
        os.environ["TOKENIZERS_PARALLELISM"],
    )
    if settings.engine == "static":
        return Batcher(host, settings.max_batch_size, settings.batch_window_ms)
    if settings.engine == "vllm":  # untested here (no GPU, no vllm): see serve/vllm_batcher.py
        return VllmBatcher(settings)
    return ContinuousBatcher(host, settings.max_batch_size, prefix_cache_mb=settings.prefix_cache_mb)


def inference_threads(setting: int) -> int:
    """torch intra-op threads for generation: ``setting``, or (0) every usable core but one.

    One core is left to the HTTP server and tokenization: OpenMP workers spin-wait for each other at every
    matmul, so one that loses its core to another thread stalls every operator (docs/generation.md, Threads).
    """
    return setting or max(1, usable_cores() - 1)


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity (taskset, cpusets), capped by a cgroup v2 CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota: the affinity mask is the limit
    return cores
