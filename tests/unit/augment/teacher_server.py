"""A tiny OpenAI-compatible chat-completions endpoint on 127.0.0.1 for the augment/distill tests.

It answers deterministically from the request (no model): paraphrase requests get word-shuffled variants,
answer-rewrite requests get ``Rewritten: ...``, judge requests get a score, anything else gets an answer.
Magic words in the user text trigger failure modes: ``GARBAGE`` (not a list), ``EMPTY`` (empty reply),
``DUPME`` (identical paraphrases), ``LOWSCORE`` (judge score 3), ``JSONBAD`` (schema-violating JSON).
``fail_plan`` injects HTTP errors (status, headers) for the next requests; every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tunesmith.augment.client import request_key


def paraphrases(text: str, n: int) -> list[str]:
    """``n`` deterministic variants: the words of ``text`` shuffled with a per-variant seed."""
    words = text.split()
    out = []
    for k in range(n):
        rng = random.Random(int(hashlib.sha256(f"{k}:{text}".encode()).hexdigest()[:8], 16))
        shuffled = words[:]
        rng.shuffle(shuffled)
        out.append(f"Variant {k + 1}: " + " ".join(shuffled))
    return out


def reply_for(body: dict) -> str:
    """The canned reply to a chat-completions request body."""
    system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
    user = body["messages"][-1]["content"]
    if "GARBAGE" in user:
        return "Sorry, I can't help with that."
    if "EMPTY" in user:
        return ""
    if system.startswith("You rewrite user messages"):
        n = int(re.search(r"write (\d+) paraphrases", system).group(1))
        if "DUPME" in user:
            return json.dumps([user] * n)
        return json.dumps(paraphrases(user, n))
    if system.startswith("You edit assistant answers"):
        return f"Rewritten: {user}"
    if system.startswith("You grade answers"):
        return "3" if "LOWSCORE" in user else "9"
    if "JSONBAD" in user:
        return '{"sentiment": 5}'
    if "JSON" in user:
        return '{"sentiment": "positive"}'
    return f"Answer to: {user}"


class TeacherServer:
    """The endpoint, served from a thread; ``base_url`` ends in ``/v1``."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.fail_plan: list[tuple[int, dict[str, str]]] = []
        self.requests: list[dict] = []  # every request body, failed ones included
        self.keys: list[str] = []  # request_key of every request answered 200
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests answered at once
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> TeacherServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):  # the client was killed mid-request
                    pass
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append(body)
                    failure = server.fail_plan.pop(0) if server.fail_plan else None
                if failure:
                    status, headers = failure
                    self._send(status, {"error": {"message": f"injected {status}", "type": "test"}}, headers)
                    return
                time.sleep(server.delay_s)
                text = reply_for(body)
                params = {k: body[k] for k in ("temperature", "max_tokens") if k in body}
                with server._lock:
                    server.keys.append(request_key(body["model"], body["messages"], params))
                prompt_words = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
                self._send(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt_words,
                            "completion_tokens": len(text.split()),
                            "total_tokens": prompt_words + len(text.split()),
                        },
                    },
                )

            def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler
