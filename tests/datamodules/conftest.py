import pytest
from llm_fake_server import KEY, KEY_ENV


@pytest.fixture
def key(monkeypatch):
    """The fake API key, set in the environment variable the endpoint configs of the tests name."""
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY
