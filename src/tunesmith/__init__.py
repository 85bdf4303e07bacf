"""tunesmith: from "should we fine-tune?" to a served, measured, fine-tuned model."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tunesmith")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
