"""User-facing errors: each says what failed, where, and how to fix it.

The CLI prints ``message`` and ``hint`` and exits 1 (traceback only with ``--debug``); the server turns them
into OpenAI-style error bodies with a 4xx status.
"""

from __future__ import annotations


class TunesmithError(Exception):
    """Base of every error a user can act on.

    Args:
        message: what failed and where (file, line, field, YAML key or flag).
        hint: what to do about it.
        param: the request parameter / config key at fault, when there is one (used by the API).
    """

    code = "tunesmith_error"
    status_code = 400

    def __init__(self, message: str, hint: str = "", *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.param = param

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(TunesmithError):
    """A config file, YAML key, flag or ``--set`` override is wrong."""

    code = "invalid_config"


class DatasetError(TunesmithError):
    """A dataset file cannot be read or has invalid records."""

    code = "invalid_file"


class ModelError(TunesmithError):
    """A model cannot be resolved or loaded."""

    code = "model_not_found"
    status_code = 404


class TrainError(TunesmithError):
    """Training cannot start or cannot continue."""

    code = "training_error"


class EvalError(TunesmithError):
    """An evaluation cannot be run or its report cannot be read."""

    code = "evaluation_error"


class ServeError(TunesmithError):
    """The server refused or failed a request (a remote endpoint's failure is an :class:`EndpointError`)."""

    code = "invalid_request"


class EndpointError(TunesmithError):
    """A remote OpenAI-compatible endpoint (a teacher, a judge, a candidate, a fine-tuning API) refused or failed.

    Not the user's request to *this* server, so not a 400: the API maps it to 502 Bad Gateway.
    """

    code = "endpoint_error"
    status_code = 502
