"""A real HTTP server on the loopback interface that speaks the chat-completions protocol, for the LLM tests.

It runs ``http.server.ThreadingHTTPServer`` on 127.0.0.1, port 0, in a thread. Scripted responses (a status, headers,
a body, a delay) are served first, in order; after them every request gets a 200 with the text of ``reply(body)``.
It counts the requests, keeps their headers (names in lower case) and bodies, and measures the most requests in
flight at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The environment variable the tests keep their fake API key in, and the key (it must never appear on disk).
KEY_ENV = "REFLECT_RL_TEST_KEY"
KEY = "sk-test-DO-NOT-LEAK-0123456789"


class FakeChatServer:
    def __init__(self, reply: Callable[[dict[str, Any]], str] | None = None, delay: float = 0.0) -> None:
        self.reply = reply or (lambda body: "ok")
        self.delay = delay
        self.script: deque[tuple[int, dict[str, str], Any, float]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - keep the test output clean
                pass

            def do_POST(self):  # noqa: N802 - the name http.server calls
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    scripted = server.script.popleft() if server.script else None
                counted = [True]

                def finished() -> None:
                    with server._lock:
                        if counted[0]:
                            server.in_flight -= 1
                            counted[0] = False

                try:
                    if self.path.rstrip("/") != "/v1/chat/completions":
                        status, headers, payload, delay = 404, {}, {"error": {"message": "no such route"}}, 0.0
                    else:
                        body = json.loads(raw)
                        with server._lock:
                            server.requests.append(body)
                        if scripted is not None:
                            status, headers, payload, delay = scripted
                        else:
                            status, headers, delay = 200, {}, server.delay
                            payload = completion(server.reply(body), body)
                    time.sleep(delay)
                    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                    # done before the answer goes out: the client cannot send its next request while this one counts
                    finished()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass
                finally:
                    finished()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def push(self, status: int, payload: Any = None, headers: dict[str, str] | None = None, delay: float = 0.0):
        """Script the next response (after earlier scripted ones)."""
        if payload is None:
            payload = {"error": {"message": f"scripted HTTP {status}", "type": "test"}}
        self.script.append((status, headers or {}, payload, delay))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text: str, body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat.completion object with a usage that counts words."""
    prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
    completion_tokens = len(text.split())
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def user_text(body: dict[str, Any]) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
