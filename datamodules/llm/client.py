"""A client for OpenAI-compatible chat-completions endpoints (OpenAI, a local vLLM or LM Studio server, ...).

The transport is the ``openai`` package: its client sends the requests, retries rate limits (honouring
``Retry-After``), server errors, timeouts and connection failures with exponential backoff, and fails at once on other
HTTP errors. What this module adds for its callers:

* **configuration** by base URL, model name and the *name* of the environment variable that holds the API key
  (:class:`EndpointConfig`); the key itself is read when the client is made and kept only in memory: it is never
  logged, never part of a cache key or a cache file, never in hyperparameters;
* an **on-disk cache** keyed by a hash of (base URL, model, messages, sampling parameters), so a rerun costs nothing;
* a **concurrency limit** (``max_concurrency`` requests in flight at once, over every thread that uses the client);
* **token accounting** (:attr:`ChatClient.usage`), logged at ``DEBUG`` per request on the ``reflect_rl.llm`` logger,
  and a warning per retry with its reason;
* **errors in one line** (:class:`EndpointError`) naming the problem and the fix: a rejected key and the variable it
  came from, an unreachable endpoint, an HTTP error with the server's message.

Example:
    >>> client = ChatClient(EndpointConfig(base_url="http://127.0.0.1:8000/v1", model="mistral", api_key_env=None),
    ...                     cache_dir="runs/llm_cache")
    >>> [reply] = client.complete_many([[{"role": "user", "content": "Say hi."}]])
    >>> reply.text, client.usage["prompt_tokens"]
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import logging
import os
import tempfile
import threading
import urllib.parse
import weakref
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import openai

logger = logging.getLogger("reflect_rl.llm")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"

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
        max_retries: Further attempts after a failed one (rate limit, server error, timeout, connection error). The
            wait between attempts is the ``openai`` client's: a server's ``Retry-After``, else exponential backoff.
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


def _fix(status: int, config: EndpointConfig) -> str:
    """What to do about an HTTP error status, in a few words."""
    if status in (401, 403):
        if config.api_key_env:
            return f"check the API key in ${config.api_key_env}"
        return "the endpoint wants a key: export one and name its variable with api_key_env"
    if status == 404:
        return "check base_url (it usually ends in /v1) and the model name"
    if status == 429:
        return "the endpoint's rate limit: lower max_concurrency, raise max_retries or try again later"
    if status >= 500 or status in (408, 409):
        return "the server keeps failing: try again later or raise max_retries"
    return "check the request options (model, max_tokens, temperature, ...)"


class _Attempts:
    """Counts the HTTP attempts of each request (``httpx`` event hooks) and logs every retry with its reason.

    The ``openai`` client retries inside one call; its HTTP client calls :meth:`on_request` before every attempt and
    :meth:`on_response` on every answer, in the calling thread, so a thread-local count is the attempts of this call.
    """

    def __init__(self, config: EndpointConfig, usage: _Usage, api_key: str | None) -> None:
        self.config, self.usage, self.api_key = config, usage, api_key
        self.local = threading.local()

    def start(self) -> None:
        """Reset the count before a call."""
        self.local.count, self.local.problem = 0, ""

    @property
    def count(self) -> int:
        """Attempts of the current call so far."""
        return getattr(self.local, "count", 0)

    def redact(self, text: str) -> str:
        """The text without the key (a server may quote the key it rejected)."""
        return text.replace(self.api_key, "***") if self.api_key else text

    def on_request(self, request: Any) -> None:
        self.local.count = self.count + 1
        self.usage.add(attempts=1, retries=int(self.local.count > 1))
        if self.local.count > 1:
            logger.warning(
                "%s: %s; retrying (attempt %d of %d)",
                self.config.url,
                getattr(self.local, "problem", "") or "no answer",
                self.local.count,
                self.config.max_retries + 1,
            )
        self.local.problem = "no answer (timeout or connection error)"

    def on_response(self, response: Any) -> None:
        if response.status_code >= 400:
            response.read()
            self.local.problem = f"HTTP {response.status_code}: {self.redact(_server_message(response.content))}"


class ChatClient:
    """Chat completions from an OpenAI-compatible endpoint, cached, retried and limited in concurrency.

    The requests go through an ``openai.OpenAI`` client (it retries and times out); the cache, the concurrency limit,
    the token counts and the one-line errors are this class's. One client may be shared by several threads.

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
        import openai  # here, not at the top: a second to import, and most commands never ask an endpoint

        self.config = config
        api_key = read_api_key(config)
        directory = config.cache_dir if config.cache_dir is not None else cache_dir
        self.cache_dir: Path | None = Path(directory) if config.cache and directory is not None else None
        self._usage = _Usage()
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self._attempts = _Attempts(config, self._usage, api_key)
        http = openai.DefaultHttpxClient(
            trust_env=not _is_loopback(config.base_url),  # a local server is never reached through a proxy
            event_hooks={"request": [self._attempts.on_request], "response": [self._attempts.on_response]},
        )
        weakref.finalize(self, http.close)
        self._openai = openai.OpenAI(
            api_key=api_key or "no key",  # never sent: the Authorization header is left out below
            base_url=str(config.base_url).rstrip("/"),
            timeout=config.timeout,
            max_retries=config.max_retries,
            http_client=http,
        )
        self._headers: dict[str, Any] = {} if api_key else {"Authorization": openai.Omit()}

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
        ``temperature=0``, ``max_tokens=8``, ``stop=[...]``) and are part of the cache key. The first request that
        fails for good stops the batch: requests not yet sent are not sent, and answers already received stay cached.
        A client's first request goes out alone, so a wrong key or URL fails once, not ``max_concurrency`` times.

        Args:
            conversations: The messages of each request.
            salts: Optional strings added to the cache key of each request and not sent: samples meant to be drawn
                independently (the same prompt in two episodes) get their own entries, and a rerun still hits them.
            **overrides: Sampling parameters of these requests.

        Raises:
            EndpointError: if a request fails for good (after retries, or at once for e.g. HTTP 401); its message is
                one line naming the problem and the fix.
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
        if todo and (len(todo) == 1 or not self._usage.requests):
            key, body = next(iter(todo.items()))  # a client's first request goes alone: a bad key or URL fails once
            found[key] = self._fetch(key, body)
            del todo[key]
        if todo:
            pool = ThreadPoolExecutor(min(self.config.max_concurrency, len(todo)), thread_name_prefix="llm")
            try:
                futures = {pool.submit(self._fetch, key, body): key for key, body in todo.items()}
                for future in as_completed(futures):
                    found[futures[future]] = future.result()  # the first failure stops the batch
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return [found[key] for key in keys]

    def _fetch(self, key: str, body: dict[str, Any]) -> Completion:
        """One request through the ``openai`` client (which retries), its answer cached and counted."""
        import openai

        extra = {name: value for name, value in body.items() if name not in ("model", "messages")}
        self._attempts.start()
        with self._slots:
            try:
                raw = self._openai.chat.completions.with_raw_response.create(
                    model=body["model"], messages=body["messages"], extra_body=extra, extra_headers=self._headers
                )
            except openai.OpenAIError as error:
                raise EndpointError(self._attempts.redact(self._problem(error))) from None
        try:
            answer = raw.parse()
            text = answer.choices[0].message.content or ""
        except (ValueError, TypeError, AttributeError, IndexError, openai.OpenAIError):
            shown = " ".join(raw.http_response.text.split())[:300] or "(empty body)"
            raise EndpointError(
                f"{self.config.url} answered without a chat completion (choices[0].message): {shown}; check that "
                "base_url is an OpenAI-compatible chat-completions API"
            ) from None
        usage = answer.usage
        tokens = (int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)) if usage is not None else (0, 0)
        completion = Completion(str(text), *tokens, cached=False, key=key)
        self._usage.add(requests=1, prompt_tokens=tokens[0], completion_tokens=tokens[1])
        logger.debug("%s: %d prompt + %d completion tokens", self.config.model, *tokens)
        self._cache_write(key, body, completion)
        return completion

    def _problem(self, error: openai.OpenAIError) -> str:
        """One line naming what went wrong and what to do about it."""
        import openai

        c, attempts = self.config, max(1, self._attempts.count)
        if isinstance(error, openai.APIStatusError):
            status = error.status_code
            detail = error.body.get("message") if isinstance(error.body, Mapping) else error.body
            if not detail:
                detail = _server_message(error.response.content)
            problem = f"HTTP {status}: {' '.join(str(detail).split())[:300]}; {_fix(status, c)}"
            if attempts > 1:
                return f"No completion from {c.url} after {attempts} attempt(s): {problem}"
            return f"{c.url} answered {problem}"
        if isinstance(error, openai.APITimeoutError):
            return (
                f"No answer from {c.url} within {c.timeout:g} s, {attempts} attempt(s); raise timeout or lower "
                "max_tokens if the server is slow"
            )
        if isinstance(error, openai.APIConnectionError):
            cause = error.__cause__ or error
            return (
                f"Could not reach {c.url} after {attempts} attempt(s): {type(cause).__name__}: {cause}; check base_url "
                "and that the server is running"
            )
        return f"No completion from {c.url}: {type(error).__name__}: {error}"

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
