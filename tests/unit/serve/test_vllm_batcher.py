"""engine=vllm: a clear error where vLLM cannot be imported; the sampling mapping; a real run where it can."""

from __future__ import annotations

import importlib.util

import pytest

from tunesmith.core.errors import ConfigError
from tunesmith.serve.inference import Sampling
from tunesmith.serve.vllm_batcher import vllm_sampling_kwargs

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAS_VLLM, reason="vllm is importable here: the missing-package error cannot happen")
def test_choosing_vllm_without_the_package_says_how_to_get_it(tmp_path):
    from tunesmith.serve.engines import build_batcher
    from tunesmith.serve.inference import ModelHost
    from tunesmith.serve.settings import ServeSettings

    settings = ServeSettings(engine="vllm", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="engine=vllm needs the vllm package") as err:
        build_batcher(ModelHost(device="cpu"), settings)
    assert "engine=continuous" in err.value.hint and err.value.param == "engine"


def test_sampling_settings_map_to_vllm_sampling_params():
    p = Sampling(max_tokens=7, temperature=0.0, top_p=0.5, stop=("\n",), n=1, seed=3, logit_bias=((5, -100.0),))
    kwargs = vllm_sampling_kwargs(p)
    assert kwargs["max_tokens"] == 7 and kwargs["temperature"] == 0.0 and kwargs["top_p"] == 1.0  # greedy
    assert kwargs["stop"] == ["\n"] and kwargs["seed"] == 3 and kwargs["logit_bias"] == {5: -100.0}
    assert "logprobs" not in vllm_sampling_kwargs(Sampling())
    assert vllm_sampling_kwargs(Sampling(logprobs=2, temperature=0.7, top_p=0.9))["top_p"] == 0.9


@pytest.mark.skipif(
    not HAS_VLLM,
    reason="vllm is not installed here (it needs a GPU it supports); engine=vllm is untested on this machine",
)
def test_vllm_engine_answers_a_greedy_request(tmp_path):  # pragma: no cover - runs only where vllm exists
    from tunesmith.models.template import prompt_ids
    from tunesmith.serve.batcher import GenRequest
    from tunesmith.serve.inference import Target
    from tunesmith.serve.settings import ServeSettings
    from tunesmith.serve.vllm_batcher import VllmBatcher

    settings = ServeSettings(engine="vllm", data_dir=tmp_path)
    batcher = VllmBatcher(settings)
    try:
        base = settings.base_models[0]
        ids = prompt_ids(batcher.host.tokenizer(base), [{"role": "user", "content": "Say hi."}])
        [done] = batcher.submit(GenRequest(Target(base, base), ids, Sampling(max_tokens=4, temperature=0))).result(
            timeout=600
        )
    finally:
        batcher.close()
    assert 0 < done.n_tokens <= 4
