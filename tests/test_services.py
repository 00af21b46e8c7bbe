"""Tests that need PostgreSQL or Redis skip with one clear reason where the server is not there (a
newcomer's laptop), and fail instead under ``CI=true`` (tests/support/services.py)."""

from __future__ import annotations

import pytest

from tests.support import services
from tests.support.services import free_port


@pytest.fixture
def no_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "PG_ADMIN_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")


async def test_without_a_server_a_postgresql_test_is_skipped_with_the_reason(
    no_postgres: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    port = services.PG_ADMIN_URL.rsplit(":", 1)[-1].split("/")[0]  # the address tried, named in the reason
    with pytest.raises(pytest.skip.Exception, match=rf"^PostgreSQL not reachable at 127\.0\.0\.1:{port}: "):
        async with services.fresh_postgres_database():
            pass


async def test_without_a_server_under_ci_a_postgresql_test_fails(
    no_postgres: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(
        pytest.fail.Exception, match=r"^PostgreSQL not reachable at .*\(CI=true: the services must run"
    ):
        async with services.fresh_postgres_database():
            pass
