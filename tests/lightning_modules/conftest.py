import pytest
from rl_fixtures import make_exports


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """Tiny stage-1 (reflection) and stage-2 (policy) exports, made once per test session."""
    return make_exports(tmp_path_factory.mktemp("exports"))
