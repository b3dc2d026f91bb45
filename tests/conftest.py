import datetime as dt
import os

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from jobs.config import load_config
    from jobs.session import build_spark
    cfg = load_config(profile="test", warehouse=tmp_path_factory.mktemp("session-warehouse"))
    session = build_spark(cfg, "audience-tests")
    yield session
    session.stop()


@pytest.fixture
def make_cfg(tmp_path):
    """A test-profile Config whose landing and warehouse live under this test's tmp_path."""
    from jobs.config import load_config
    def _make(**overrides):
        return load_config(profile="test", landing=overrides.get("landing", tmp_path / "landing"),
                           warehouse=overrides.get("warehouse", tmp_path / "warehouse"))
    return _make


@pytest.fixture
def day():
    return dt.date(2025, 12, 16)
