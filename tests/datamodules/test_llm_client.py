"""The endpoint client against a real chat-completions server on 127.0.0.1 (no in-process mock of the client)."""

import logging
import socket
import threading
import time

import pytest
from llm_fake_server import KEY, KEY_ENV, FakeChatServer, user_text

from datamodules.llm.client import ChatClient, EndpointConfig, EndpointError


@pytest.fixture
def server():
    server = FakeChatServer(reply=lambda body: "echo: " + user_text(body))
    yield server
    server.close()


def config(server, **overrides):
    return EndpointConfig(base_url=server.base_url, model="fake-gpt", api_key_env=KEY_ENV, **overrides)


#: A server's request to retry after 10 ms (instead of the client's own backoff of half a second and more).
SOON = {"retry-after-ms": "10"}


def ask(text):
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def files_text(directory):
    return "".join(p.read_text(errors="replace") for p in directory.rglob("*") if p.is_file())


def test_a_completion_sends_the_request_and_the_bearer_key_and_counts_tokens(server, key, tmp_path):
    client = ChatClient(config(server, temperature=0.3, max_tokens=20), cache_dir=tmp_path)
    reply = client.complete(ask("hello there"))
    assert reply.text == "echo: hello there" and not reply.cached
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"
    body = server.requests[0]
    assert body["model"] == "fake-gpt" and body["temperature"] == 0.3 and body["max_tokens"] == 20
    assert body["messages"] == ask("hello there")
    assert (reply.prompt_tokens, reply.completion_tokens) == (4, 3)  # the fake server counts words
    assert client.usage["prompt_tokens"] == 4 and client.usage["completion_tokens"] == 3
    assert client.usage["requests"] == 1 and client.usage["attempts"] == 1


def test_cache_hits_make_a_rerun_free_and_the_cache_holds_no_key(server, key, tmp_path, monkeypatch):
    prompts = [ask(f"question {i}") for i in range(5)]
    first = ChatClient(config(server), cache_dir=tmp_path).complete_many(prompts)
    assert len(server.requests) == 5

    monkeypatch.setenv(KEY_ENV, "sk-another-key")  # the key is not part of the cache key
    rerun = ChatClient(config(server), cache_dir=tmp_path)
    again = rerun.complete_many(prompts)
    assert len(server.requests) == 5, "a rerun made requests"
    assert [a.text for a in again] == [f.text for f in first] and all(a.cached for a in again)
    assert rerun.usage["cache_hits"] == 5 and rerun.usage["requests"] == 0

    # another model or other sampling parameters are other requests
    ChatClient(config(server, temperature=0.7), cache_dir=tmp_path).complete(prompts[0])
    ChatClient(EndpointConfig(**{**config(server).public(), "model": "other"}), cache_dir=tmp_path).complete(prompts[0])
    assert len(server.requests) == 7
    assert KEY not in files_text(tmp_path) and "sk-another-key" not in files_text(tmp_path)
    assert KEY_ENV not in files_text(tmp_path)


def test_identical_requests_of_a_batch_are_sent_once(server, key, tmp_path):
    client = ChatClient(config(server), cache_dir=None)
    replies = client.complete_many([ask("same"), ask("same"), ask("other"), ask("same")])
    assert [r.text for r in replies] == ["echo: same", "echo: same", "echo: other", "echo: same"]
    assert len(server.requests) == 2


def test_rate_limits_and_server_errors_are_retried_honouring_retry_after(server, key, tmp_path):
    server.push(429, {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}, {"Retry-After": "1"})
    server.push(500, headers=SOON)
    server.push(503, b"<html>busy</html>", SOON)
    client = ChatClient(config(server), cache_dir=tmp_path)
    start = time.perf_counter()
    reply = client.complete(ask("persist"))
    elapsed = time.perf_counter() - start
    assert reply.text == "echo: persist"
    assert len(server.requests) == 4
    assert client.usage["retries"] == 3 and client.usage["attempts"] == 4 and client.usage["requests"] == 1
    assert elapsed >= 1.0, "Retry-After: 1 was not honoured"
    assert elapsed < 5.0


def test_retries_give_up_with_the_last_error(server, key):
    for _ in range(3):
        server.push(500, {"error": {"message": "the engine is overloaded"}}, SOON)
    client = ChatClient(config(server, max_retries=2), cache_dir=None)
    with pytest.raises(EndpointError, match=r"after 3 attempt\(s\): HTTP 500: the engine is overloaded") as error:
        client.complete(ask("x"))
    assert server.base_url in str(error.value) and len(server.requests) == 3
    assert "try again later or raise max_retries" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "status, fix",
    [
        (400, "check the request options (model, max_tokens, temperature, ...)"),
        (403, f"check the API key in ${KEY_ENV}"),
        (404, "check base_url (it usually ends in /v1) and the model name"),
        (422, "check the request options (model, max_tokens, temperature, ...)"),
    ],
)
def test_other_http_errors_are_one_line_with_the_server_s_message_and_the_fix(server, key, status, fix):
    server.push(status, {"error": {"message": f"the server says no ({status})", "type": "invalid_request_error"}})
    client = ChatClient(config(server), cache_dir=None)
    with pytest.raises(EndpointError) as error:
        client.complete(ask("x"))
    message = str(error.value)
    assert message == f"{server.base_url}/chat/completions answered HTTP {status}: the server says no ({status}); {fix}"
    assert len(server.requests) == 1 and error.value.__cause__ is None and error.value.__suppress_context__


def test_a_wrong_base_url_names_the_route_the_server_does_not_have(server, key):
    client = ChatClient(EndpointConfig(base_url=server.base_url.removesuffix("/v1"), model="m", api_key_env=KEY_ENV))
    with pytest.raises(EndpointError, match=r"answered HTTP 404: no such route; check base_url"):
        client.complete(ask("x"))


def test_a_keyless_config_rejected_by_the_server_says_to_name_a_key_variable(server, monkeypatch):
    server.push(401, {"error": {"message": "You didn't provide an API key."}})
    client = ChatClient(EndpointConfig(base_url=server.base_url, model="m", api_key_env=None))
    with pytest.raises(EndpointError, match=r"HTTP 401: You didn't provide an API key.; the endpoint wants a key: "
                                            r"export one and name its variable with api_key_env"):  # fmt: skip
        client.complete(ask("x"))


def test_an_answer_that_is_not_a_chat_completion_is_named(server, key):
    server.push(200, b"<html>a login page</html>")
    client = ChatClient(config(server, max_retries=0), cache_dir=None)
    with pytest.raises(EndpointError, match=r"answered without a chat completion .*: <html>a login page</html>"):
        client.complete(ask("x"))


def test_an_unrecoverable_error_fails_at_once_with_the_servers_message(server, key):
    server.push(401, {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}})
    client = ChatClient(config(server), cache_dir=None)
    with pytest.raises(EndpointError) as error:
        client.complete(ask("x"))
    message = str(error.value)
    assert "HTTP 401" in message and "Incorrect API key provided" in message and f"${KEY_ENV}" in message
    assert KEY not in message and len(server.requests) == 1


def test_a_rejected_key_fails_a_batch_after_one_request(server, key):
    server.push(401, {"error": {"message": "Incorrect API key provided."}})
    client = ChatClient(config(server), cache_dir=None)
    with pytest.raises(EndpointError, match="HTTP 401"):
        client.complete_many([ask(f"q{i}") for i in range(6)])
    assert len(server.requests) == 1


def test_a_response_slower_than_the_timeout_is_retried(server, key):
    server.push(200, {"choices": [{"message": {"content": "too late"}}]}, delay=1.5)
    client = ChatClient(config(server, timeout=0.3), cache_dir=None)
    assert client.complete(ask("quick")).text == "echo: quick"
    assert client.usage["retries"] == 1


def test_an_unreachable_endpoint_is_a_clear_error_naming_the_url_after_retries(key):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ChatClient(
        EndpointConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", api_key_env=KEY_ENV,
                       max_retries=2),
        cache_dir=None,
    )  # fmt: skip
    with pytest.raises(EndpointError) as error:
        client.complete(ask("anyone?"))
    message = str(error.value)
    assert message.startswith(f"Could not reach http://127.0.0.1:{port}/v1/chat/completions after 3 attempt(s)")
    assert message.endswith("check base_url and that the server is running")
    assert "\n" not in message and isinstance(error.value, OSError)
    assert client.usage["attempts"] == 3


def test_no_more_than_max_concurrency_requests_are_in_flight(key):
    server = FakeChatServer(reply=lambda body: "slow " + user_text(body), delay=0.2)
    try:
        client = ChatClient(config(server, max_concurrency=3), cache_dir=None)
        start = time.perf_counter()
        replies = client.complete_many([ask(f"q{i}") for i in range(9)])
        elapsed = time.perf_counter() - start
        assert [r.text for r in replies] == [f"slow q{i}" for i in range(9)]
        assert server.max_in_flight == 3
        assert elapsed < 9 * 0.2 * 0.6, "the requests were not concurrent"

        # the limit holds over threads that share the client
        server.max_in_flight = 0
        threads = [
            threading.Thread(target=client.complete_many, args=([ask(f"t{t}-{i}") for i in range(4)],))
            for t in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.max_in_flight == 3 and len(server.requests) == 9 + 12
    finally:
        server.close()


def test_a_missing_key_is_a_one_line_error_naming_the_variable(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ValueError) as error:
        ChatClient(config(server))
    message = str(error.value)
    assert KEY_ENV in message and server.base_url in message and "\n" not in message
    assert not server.requests


def test_a_keyless_server_gets_no_authorization_header(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    client = ChatClient(EndpointConfig(base_url=server.base_url, model="local", api_key_env=None))
    assert client.complete(ask("hi")).text == "echo: hi"
    assert "authorization" not in server.headers[0]


def test_the_key_is_never_logged_or_shown(server, key, tmp_path, caplog):
    server.push(429, headers={"Retry-After": "0"})
    client = ChatClient(config(server), cache_dir=tmp_path)
    with caplog.at_level(logging.DEBUG):
        client.complete(ask("a"))
        server.push(400, {"error": {"message": "bad request"}})
        with pytest.raises(EndpointError):
            client.complete(ask("b"))
        client.complete(ask("c"))
    assert "retrying" in caplog.text and "prompt" in caplog.text
    assert KEY not in caplog.text and KEY not in repr(client) and KEY not in str(client.config.public())


def test_configs_reject_unknown_options_and_keys_in_files():
    with pytest.raises(ValueError, match="Unknown endpoint option"):
        EndpointConfig.from_dict({"model": "m", "temprature": 0.2})
    with pytest.raises(ValueError, match="Do not put an API key in a config"):
        EndpointConfig.from_dict({"model": "m", "api_key": "sk-..."})
    with pytest.raises(ValueError, match="base_url"):
        EndpointConfig(base_url="localhost:8000")


def test_salted_requests_are_sampled_separately_and_cached_separately(server, key, tmp_path):
    client = ChatClient(config(server, temperature=1.0), cache_dir=tmp_path)
    client.complete_many([ask("same"), ask("same")], salts=["episode 1", "episode 2"])
    assert len(server.requests) == 2 and server.requests[0] == server.requests[1]  # the salt is not sent
    rerun = ChatClient(config(server, temperature=1.0), cache_dir=tmp_path)
    rerun.complete_many([ask("same"), ask("same")], salts=["episode 1", "episode 2"])
    assert len(server.requests) == 2 and rerun.usage["cache_hits"] == 2
