"""Rate limits counted in Redis (PORTAL_RATELIMIT_STORAGE_URI): a limit holds across two server processes,
where `memory://` would let each process count its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import test_config as settings_for
from tests.services.live import GunicornServer, HttpClient

LIMIT = 3


def _servers(database_url: str, tmp_path: Path, storage_uri: str) -> Iterator[list[GunicornServer]]:
    settings = settings_for(database_url, tmp_path / "instance", RATELIMIT_ENABLED=True,
                           RATELIMIT_STORAGE_URI=storage_uri, USAGE_REQUEST_RATE_LIMIT=f"{LIMIT} per hour")
    with ExitStack() as stack:
        yield [stack.enter_context(GunicornServer(settings, processes=1)) for _ in range(2)]


@pytest.fixture
def redis_uri(redis_server) -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield redis_server.url
    client.close()


def _submit(server: GunicornServer) -> int:
    client = HttpClient(server.url)
    return client.post_form("/apply", {"company_name": "株式会社テスト"}).status


def test_the_apply_limit_holds_across_two_server_processes(database_url, tmp_path, redis_uri):
    for servers in _servers(database_url, tmp_path, redis_uri):
        first, second = servers
        answers = [_submit(server) for server in (first, second, first, second, first)]
        assert answers[:LIMIT] == [422] * LIMIT, answers  # counted, refused for the empty form
        assert answers[LIMIT:] == [429, 429], answers  # the limit is one count for both processes
        page = HttpClient(second.url)
        reply = page.post("/apply", {"csrf_token": page.csrf("/apply")})
        assert reply.status == 429
        assert "操作が多すぎます" in reply.text
        for server in servers:
            assert not server.errors, server.errors[0]
    import redis

    keys = [key.decode() for key in redis.Redis.from_url(redis_uri).keys("*")]
    assert any("usage_requests.new" in key for key in keys), keys  # the counters are in Redis



@pytest.fixture
def app_config():
    from tests.services.smtp import free_port

    return {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{free_port()}/0",
            "USAGE_REQUEST_RATE_LIMIT": f"{LIMIT} per hour"}


def test_with_redis_down_the_limit_holds_per_process_and_nothing_fails(client):
    """Redis unreachable: each process counts in memory meanwhile (a limit per process, never a 500)."""
    import importlib.util

    from tests.conftest import csrf_from, require

    require(importlib.util.find_spec("redis") is not None, "the redis client library is not installed")

    answers = []
    for _ in range(LIMIT + 1):
        token = csrf_from(client.get("/apply").get_data(as_text=True))
        answers.append(client.post("/apply", data={"csrf_token": token}).status_code)
    assert answers == [422] * LIMIT + [429], answers
