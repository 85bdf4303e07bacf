"""Resolve, cache and load models; render chat templates with loss masks."""

import warnings

# peft 0.21 reads transformers 5's deprecated `is_gradient_checkpointing` whenever it wraps a model; the warning
# is not actionable for tunesmith users, so it is not shown.
warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
