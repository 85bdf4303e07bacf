"""The bottom layer: what every stage shares and nothing of tunesmith's stages.

``schema`` (the chat format), ``records`` (line-numbered records and their problems), ``pricing`` (the price
table), ``jsonl`` (one durable append-only log and cache, one tolerant reader), ``endpoints`` (one client factory
for OpenAI-compatible endpoints), ``errors``, ``atomic`` (atomic writes), ``config`` (config loading) and
``replies`` (a model reply's JSON value, a judge's score). ``core`` imports no other tunesmith package; the
import-linter contracts in pyproject.toml keep it so.
"""
