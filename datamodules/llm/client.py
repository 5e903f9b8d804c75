"""A client for OpenAI-compatible chat-completions endpoints (OpenAI, a local vLLM or LM Studio server, ...).

Only the standard library: ``urllib.request`` for HTTP and threads for concurrency. What it does for its callers:

* **configuration** by base URL, model name and the *name* of the environment variable that holds the API key
  (:class:`EndpointConfig`); the key itself is read when the client is made and kept only in memory: it is never
  logged, never part of a cache key or a cache file, never in hyperparameters;
* an **on-disk cache** keyed by a hash of (base URL, model, messages, sampling parameters), so a rerun costs nothing;
* **retries** with exponential backoff on rate limits (honouring ``Retry-After``), server errors, timeouts and
  connection failures; other HTTP errors (a bad key, an unknown model) fail at once with the server's message;
* a **concurrency limit** (``max_concurrency`` requests in flight at once, over every thread that uses the client);
* **token accounting** (:attr:`ChatClient.usage`), logged at ``DEBUG`` per request on the ``reflect_rl.llm`` logger.

Example:
    >>> client = ChatClient(EndpointConfig(base_url="http://127.0.0.1:8000/v1", model="mistral", api_key_env=None),
    ...                     cache_dir="runs/llm_cache")
    >>> [reply] = client.complete_many([[{"role": "user", "content": "Say hi."}]])
    >>> reply.text, client.usage["prompt_tokens"]
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import random
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("reflect_rl.llm")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
#: HTTP statuses worth another attempt: timeouts, conflicts, rate limits, server errors.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})

Messages = Sequence[Mapping[str, str]]


class EndpointError(OSError):
    """The endpoint could not give a completion (unreachable after retries, or an error it will not recover from).

    Example:
        >>> try:
        ...     reply = client.complete([{"role": "user", "content": "Say hi."}])
        ... except EndpointError as error:  # e.g. "Could not reach http://127.0.0.1:8000/v1/chat/completions ..."
        ...     print(error)
    """


@dataclass
class EndpointConfig:
    """Where and how to ask for chat completions.

    Attributes:
        base_url: The API root that ``/chat/completions`` is appended to, e.g. ``https://api.openai.com/v1`` or a
            local ``http://127.0.0.1:8000/v1`` (vLLM) / ``http://localhost:1234/v1`` (LM Studio).
        model: The model name the endpoint serves (``gpt-4``, ``mistralai/Mistral-7B-Instruct-v0.2``, ...).
        api_key_env: Name of the environment variable holding the API key (sent as a bearer token); ``None`` for a
            server that needs none. The key is never stored anywhere but in the client's memory.
        temperature: Sampling temperature.
        top_p: Nucleus sampling (``None``: the server's default; not sent).
        max_tokens: Completion budget.
        timeout: Seconds to wait for one response before it counts as a failed attempt.
        max_retries: Further attempts after a failed one (rate limit, server error, timeout, connection error).
        backoff: Wait before the first retry in seconds; doubled each retry (with jitter), at most ``max_backoff``.
        max_backoff: Longest wait between attempts (also the cap of a server's ``Retry-After``).
        max_concurrency: Requests in flight at once.
        cache: Keep completions on disk and answer repeated requests from there.
        cache_dir: Directory of the cache (default: chosen by the caller, under the run's output directory).

    Example:
        >>> config = EndpointConfig(model="gpt-4", api_key_env="OPENAI_API_KEY", max_tokens=96)
        >>> local = EndpointConfig.from_dict({"base_url": "http://127.0.0.1:8000/v1", "model": "mistral",
        ...                                   "api_key_env": None})
        >>> local.url
        'http://127.0.0.1:8000/v1/chat/completions'
    """

    base_url: str = DEFAULT_BASE_URL
    model: str = "gpt-4"
    api_key_env: str | None = DEFAULT_API_KEY_ENV
    temperature: float = 0.0
    top_p: float | None = None
    max_tokens: int = 128
    timeout: float = 60.0
    max_retries: int = 6
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_concurrency: int = 8
    cache: bool = True
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlparse(str(self.base_url))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL}, got {self.base_url!r}.")
        if not self.model:
            raise ValueError("model must name the model the endpoint serves, e.g. gpt-4.")
        if self.max_concurrency < 1 or self.max_retries < 0 or self.timeout <= 0 or self.max_tokens < 1:
            raise ValueError(
                "max_concurrency and max_tokens must be >= 1, max_retries >= 0 and timeout > 0; got "
                f"{self.max_concurrency}, {self.max_tokens}, {self.max_retries} and {self.timeout}."
            )
        if self.api_key_env is not None and not str(self.api_key_env).strip():
            raise ValueError("api_key_env must name an environment variable (or be null for a server without keys).")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EndpointConfig:
        """Build a config from a mapping (a YAML section), with a clear error for an unknown key.

        Raises:
            ValueError: for an unknown key or a bad value. There is no ``api_key`` key on purpose: keys live in the
                environment (``api_key_env`` names the variable).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"An endpoint config must be a mapping, got {type(data).__name__}.")
        known = [f.name for f in dataclasses.fields(cls)]
        if "api_key" in data:
            raise ValueError(
                "Do not put an API key in a config: set an environment variable and name it with api_key_env "
                f"(default {DEFAULT_API_KEY_ENV})."
            )
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"Unknown endpoint option(s) {', '.join(unknown)}; known: {', '.join(known)}.")
        return cls(**dict(data))

    @property
    def url(self) -> str:
        """The chat-completions URL."""
        return str(self.base_url).rstrip("/") + "/chat/completions"

    def public(self) -> dict[str, Any]:
        """The config as a dict (safe to log or save: it holds the key's variable name, never the key)."""
        return dataclasses.asdict(self)


def read_api_key(config: EndpointConfig) -> str | None:
    """Read the API key from the environment variable the config names (``None`` when it names none).

    Raises:
        ValueError: if the variable is not set or empty (one line, naming the variable and the endpoint).
    """
    if config.api_key_env is None:
        return None
    key = os.environ.get(config.api_key_env, "").strip()
    if not key:
        raise ValueError(
            f"The API key for {config.base_url} is read from the environment variable {config.api_key_env}, which is "
            f"not set: export {config.api_key_env}=... (or set api_key_env: null for a server that needs no key)."
        )
    return key


@dataclass
class Completion:
    """One answer of the endpoint.

    Attributes:
        text: The assistant message's content.
        prompt_tokens: Prompt tokens the endpoint counted (0 if it reported none).
        completion_tokens: Completion tokens the endpoint counted.
        cached: Whether the answer came from the on-disk cache (no request was made).
        key: The cache key of the request.
    """

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    key: str = ""


@dataclass
class _Usage:
    requests: int = 0  # completions fetched over HTTP
    attempts: int = 0  # HTTP attempts, retries included
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _server_message(raw: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the start of the body."""
    text = raw.decode("utf-8", "replace")
    try:
        payload = json.loads(text)
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    except json.JSONDecodeError:
        pass
    text = " ".join(text.split())
    return text[:300] or "(empty body)"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: use our own backoff


class ChatClient:
    """Chat completions from an OpenAI-compatible endpoint, cached, retried and limited in concurrency.

    Args:
        config: The endpoint config.
        cache_dir: Directory of the on-disk cache when ``config.cache_dir`` is not set (callers pass a directory under
            the run's output directory). ``None`` and no ``config.cache_dir``: no cache.

    Raises:
        ValueError: if the config names an API key variable that is not set.

    Example:
        >>> client = ChatClient(EndpointConfig(model="gpt-4"), cache_dir="runs/llm_cache")  # key from $OPENAI_API_KEY
        >>> reply = client.complete([{"role": "user", "content": "Say hi."}], max_tokens=8)
        >>> reply.text, reply.cached, client.usage_summary()
    """

    def __init__(self, config: EndpointConfig, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.config = config
        self._api_key = read_api_key(config)
        directory = config.cache_dir if config.cache_dir is not None else cache_dir
        self.cache_dir: Path | None = Path(directory) if config.cache and directory is not None else None
        self._usage = _Usage()
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(config.base_url) else []
        self._opener = urllib.request.build_opener(*handlers)  # a local server is never reached through a proxy

    def __repr__(self) -> str:  # never shows the key
        return f"ChatClient(base_url={self.config.base_url!r}, model={self.config.model!r})"

    # -- accounting -------------------------------------------------------------------------------------------------
    @property
    def usage(self) -> dict[str, int]:
        """Counts so far: ``requests`` (fetched over HTTP), ``attempts``, ``retries``, ``cache_hits``, tokens."""
        with self._usage.lock:
            return {f.name: getattr(self._usage, f.name) for f in dataclasses.fields(_Usage) if f.name != "lock"}

    def usage_summary(self) -> str:
        """One line: requests, cache hits, retries and tokens so far."""
        u = self.usage
        return (
            f"{self.config.model} at {self.config.base_url}: {u['requests']} requests, {u['cache_hits']} cache hits, "
            f"{u['retries']} retries, {u['prompt_tokens']} prompt + {u['completion_tokens']} completion tokens"
        )

    # -- requests ---------------------------------------------------------------------------------------------------
    def request_body(self, messages: Messages, **overrides: Any) -> dict[str, Any]:
        """The JSON body of a request: model, messages and sampling parameters (``overrides`` win)."""
        c = self.config
        body: dict[str, Any] = {
            "model": c.model,
            "messages": [{"role": str(m["role"]), "content": str(m["content"])} for m in messages],
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
        }
        if c.top_p is not None:
            body["top_p"] = c.top_p
        body.update({k: v for k, v in overrides.items() if v is not None})
        return body

    def cache_key(self, body: Mapping[str, Any], salt: str | None = None) -> str:
        """SHA-256 of the base URL, the request body (model, messages, sampling parameters) and a salt (not the key)."""
        identity: dict[str, Any] = {"base_url": str(self.config.base_url).rstrip("/"), "body": body}
        if salt:
            identity["salt"] = salt
        return hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=True).encode()).hexdigest()

    def complete(self, messages: Messages, **overrides: Any) -> Completion:
        """One completion (see :meth:`complete_many`)."""
        return self.complete_many([messages], **overrides)[0]

    def complete_many(
        self, conversations: Sequence[Messages], salts: Sequence[str | None] | None = None, **overrides: Any
    ) -> list[Completion]:
        """Completions of several conversations, in order; those not cached are fetched concurrently.

        Identical requests are fetched once. ``overrides`` change sampling parameters of these requests (e.g.
        ``temperature=0``, ``max_tokens=8``, ``stop=[...]``) and are part of the cache key.

        Args:
            conversations: The messages of each request.
            salts: Optional strings added to the cache key of each request and not sent: samples meant to be drawn
                independently (the same prompt in two episodes) get their own entries, and a rerun still hits them.
            **overrides: Sampling parameters of these requests.

        Raises:
            EndpointError: if a request fails for good (after retries, or at once for e.g. HTTP 401).
        """
        bodies = [self.request_body(messages, **overrides) for messages in conversations]
        salts = list(salts) if salts is not None else [None] * len(bodies)
        keys = [self.cache_key(body, salt) for body, salt in zip(bodies, salts, strict=True)]
        found: dict[str, Completion] = {}
        for key in dict.fromkeys(keys):
            hit = self._cache_read(key)
            if hit is not None:
                found[key] = hit
                self._usage.add(cache_hits=1)
        todo = {key: body for key, body in zip(keys, bodies, strict=True) if key not in found}
        if todo:
            workers = min(self.config.max_concurrency, len(todo))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm") as pool:
                futures = {key: pool.submit(self._fetch, key, body) for key, body in todo.items()}
                found.update({key: future.result() for key, future in futures.items()})
        return [found[key] for key in keys]

    def _fetch(self, key: str, body: dict[str, Any]) -> Completion:
        payload = self._post(body)
        try:
            message = payload["choices"][0]["message"]
            text = message.get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise EndpointError(
                f"{self.config.url} answered without choices[0].message: {json.dumps(payload)[:300]}"
            ) from None
        usage = payload.get("usage") or {}
        completion = Completion(
            str(text), int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), False, key
        )
        self._usage.add(
            requests=1, prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens
        )
        logger.debug(
            "%s: %d prompt + %d completion tokens",
            self.config.model,
            completion.prompt_tokens,
            completion.completion_tokens,
        )
        self._cache_write(key, body, completion)
        return completion

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST with retries; returns the decoded JSON answer."""
        c = self.config
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "reflect-rl"}
        if self._api_key is not None:
            headers["Authorization"] = "Bearer " + self._api_key
        attempts = c.max_retries + 1
        problem, unreachable = "", False
        for attempt in range(1, attempts + 1):
            wait: float | None = None
            self._usage.add(attempts=1)
            with self._slots:
                try:
                    request = urllib.request.Request(c.url, data=data, headers=headers, method="POST")
                    with self._opener.open(request, timeout=c.timeout) as response:
                        raw = response.read()
                    try:
                        return json.loads(raw)
                    except json.JSONDecodeError:
                        problem, unreachable = f"the answer is not JSON: {_server_message(raw)}", False
                except urllib.error.HTTPError as error:
                    message = _server_message(error.read() or b"")
                    if self._api_key:  # a server may quote the key it rejected
                        message = message.replace(self._api_key, "***")
                    if error.code not in RETRY_STATUSES:
                        hint = ""
                        if error.code in (401, 403):
                            hint = f" (the key comes from ${c.api_key_env})" if c.api_key_env else " (no key sent)"
                        raise EndpointError(f"{c.url} answered HTTP {error.code}{hint}: {message}") from None
                    problem, unreachable = f"HTTP {error.code}: {message}", False
                    wait = _retry_after(error.headers.get("Retry-After") if error.headers else None)
                except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as error:
                    reason = getattr(error, "reason", error)
                    problem, unreachable = f"{type(reason).__name__}: {reason}", True
            if attempt == attempts:
                break
            if wait is None:
                wait = c.backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
            wait = min(wait, c.max_backoff)
            self._usage.add(retries=1)
            logger.warning("%s: %s; retrying in %.2f s (attempt %d of %d)", c.url, problem, wait, attempt + 1, attempts)
            time.sleep(wait)
        verb = "Could not reach" if unreachable else "No completion from"
        raise EndpointError(f"{verb} {c.url} after {attempts} attempt(s): {problem}")

    # -- cache ------------------------------------------------------------------------------------------------------
    def _cache_path(self, key: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / key[:2] / f"{key}.json"

    def _cache_read(self, key: str) -> Completion | None:
        if self.cache_dir is None:
            return None
        path = self._cache_path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            tokens = int(entry["prompt_tokens"]), int(entry["completion_tokens"])
            return Completion(str(entry["text"]), *tokens, cached=True, key=key)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("Ignoring an unreadable cache entry %s", path)
            return None

    def _cache_write(self, key: str, body: Mapping[str, Any], completion: Completion) -> None:
        if self.cache_dir is None:
            return
        path = self._cache_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "base_url": str(self.config.base_url).rstrip("/"),
            "request": body,
            "text": completion.text,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
        }
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(entry, out, ensure_ascii=True)
            os.replace(temporary, path)  # atomic: a concurrent reader sees the whole entry or none
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
