"""Which weights' dtype generation uses: as set, or bf16 only where this machine runs it natively."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tunesmith.evaluate.config import EvalConfig
from tunesmith.models.load import fast_bf16, inference_dtype
from tunesmith.serve.settings import ServeSettings


def test_auto_picks_bf16_only_where_it_is_native():
    import torch

    native = (
        torch.cuda.is_bf16_supported()
        if torch.cuda.is_available()
        else torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    )
    assert fast_bf16() == native
    assert inference_dtype("auto") == ("bfloat16" if native else "float32")
    assert inference_dtype("float32") == "float32" and inference_dtype("bfloat16") == "bfloat16"


def test_an_unknown_dtype_is_refused_by_name(tmp_path):
    with pytest.raises(ValidationError, match="inference_dtype"):
        ServeSettings(data_dir=tmp_path, inference_dtype="float16")
    with pytest.raises(ValidationError, match="dtype"):
        EvalConfig(test_file=tmp_path / "t.jsonl", candidates=[{"kind": "zero-shot"}], dtype="fp8")


def test_bf16_weights_load_for_inference(tiny_model_dir):
    import torch

    from tunesmith.models.runs import load_for_inference

    model, _ = load_for_inference(str(tiny_model_dir), dtype="bfloat16", device="cpu")
    assert next(model.parameters()).dtype == torch.bfloat16 and not model.training
