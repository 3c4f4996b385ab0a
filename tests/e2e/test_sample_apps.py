"""Tests of the sample voting app services (vote/, result/, worker/) against a real Redis and a
real PostgreSQL (tests/helpers/sample_apps.py); failures are real outages, not scripted fakes."""

from __future__ import annotations

import json

import pytest
import redis

from tests.helpers.sample_apps import (
    drop_the_first_write,
    pg_env,  # noqa: F401 -- fixture, used by name
    postgres_socket_dir,  # noqa: F401 -- fixture, requested by pg_env
    queue,  # noqa: F401 -- fixture, used by name
    redis_server,  # noqa: F401 -- fixture, requested by queue
    result_app,
    sql,
    unreachable_db,
    unreachable_redis,
    vote_app,
    votes_table,
    worker,
    written_in_order,
)

# --------------------------------------------------------------------------- vote


@pytest.fixture
def vote_client(queue):
    app = vote_app.create_app(redis_client=queue, option_a="Tabs", option_b="Spaces")
    return app.test_client()


def queued_votes(queue) -> list[dict]:
    return [json.loads(raw) for raw in queue.lrange("votes", 0, -1)]


def test_vote_pushes_json_with_the_voters_cookie_id(vote_client, queue):
    vote_client.set_cookie("voter_id", "voter-42")
    response = vote_client.post("/", data={"vote": "b"})
    assert response.status_code == 200
    assert queued_votes(queue) == [{"voter_id": "voter-42", "vote": "b"}]
    assert "your vote for Spaces" in response.get_data(as_text=True)


def test_first_vote_gets_a_new_voter_id_cookie_matching_the_queued_vote(vote_client, queue):
    response = vote_client.post("/", data={"vote": "a"})
    cookie = vote_client.get_cookie("voter_id")
    assert cookie is not None and len(cookie.value) == 32
    assert queued_votes(queue) == [{"voter_id": cookie.value, "vote": "a"}]
    assert "HttpOnly" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("form", [{"vote": "c"}, {"vote": ""}, {}])
def test_invalid_vote_is_rejected_and_not_queued(vote_client, queue, form):
    assert vote_client.post("/", data=form).status_code == 400
    assert queue.keys("*") == []


def test_unreachable_redis_is_a_503_page_not_a_crash(tmp_path):
    client = vote_app.create_app(redis_client=unreachable_redis(tmp_path)).test_client()
    response = client.post("/", data={"vote": "a"})
    assert response.status_code == 503
    assert "not recorded" in response.get_data(as_text=True)


def test_form_shows_the_configured_options(vote_client):
    page = vote_client.get("/").get_data(as_text=True)
    assert 'value="a">Tabs</button>' in page and 'value="b">Spaces</button>' in page


def test_vote_options_default_from_environment(monkeypatch, queue):
    monkeypatch.setenv("OPTION_A", "Tea")
    monkeypatch.delenv("OPTION_B", raising=False)
    page = vote_app.create_app(redis_client=queue).test_client().get("/").get_data(as_text=True)
    assert "Tea vs Dogs" in page


def test_vote_healthz_does_not_touch_redis(tmp_path):
    # Every Redis command of this client fails (nothing serves its socket): a 200 proves healthz
    # never uses Redis.
    client = vote_app.create_app(redis_client=unreachable_redis(tmp_path)).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_vote_message_is_what_the_worker_accepts():
    assert worker.parse_vote(vote_app.vote_message("id-1", "a").encode()) == ("id-1", "a")


# --------------------------------------------------------------------------- result


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("a", 3), ("b", 1)], {"a": 3, "b": 1, "total": 4, "percent_a": 75, "percent_b": 25}),
        ([("b", 2), ("a", 1)], {"a": 1, "b": 2, "total": 3, "percent_a": 33, "percent_b": 67}),
        ([], {"a": 0, "b": 0, "total": 0, "percent_a": 50, "percent_b": 50}),
        ([("a", 2), ("x", 9)], {"a": 2, "b": 0, "total": 2, "percent_a": 100, "percent_b": 0}),
    ],
)
def test_tally(rows, expected):
    assert result_app.tally(rows) == expected


def _open_connections() -> int:
    """Client backends connected to the cluster, this query's own excluded."""
    return sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
               "AND pid <> pg_backend_pid()")[0][0]


@pytest.mark.usefixtures("pg_env")
def test_api_results_reads_the_tally_and_closes_the_connection():
    votes_table(tuple((f"v{i}", "a") for i in range(5)) + tuple((f"w{i}", "b") for i in range(7)))
    app = result_app.create_app(option_a="Tabs", option_b="Spaces")
    response = app.test_client().get("/api/results")
    assert response.status_code == 200
    assert response.get_json() == {
        "option_a": "Tabs", "option_b": "Spaces",
        "a": 5, "b": 7, "total": 12, "percent_a": 42, "percent_b": 58,
    }
    assert _open_connections() == 0  # the request's connection was closed, not left to the GC


@pytest.mark.usefixtures("pg_env")
def test_result_page_shows_counts():
    votes_table((("v1", "a"),))
    page = result_app.create_app().test_client().get("/").get_data(as_text=True)
    assert "Cats: 1 (100%)" in page and "Dogs: 0 (0%)" in page and "1 vote<" in page


def test_unreachable_database_is_a_503_not_a_crash():
    client = result_app.create_app(connect=unreachable_db).test_client()
    assert client.get("/api/results").status_code == 503
    assert client.get("/").status_code == 503
    assert client.get("/healthz").status_code == 200


@pytest.mark.usefixtures("pg_env")
def test_result_reads_no_votes_before_the_worker_created_the_table():
    response = result_app.create_app().test_client().get("/api/results")
    assert response.status_code == 200 and response.get_json()["total"] == 0


# --------------------------------------------------------------------------- worker


@pytest.mark.usefixtures("pg_env")
def test_process_vote_upserts_by_voter_id():
    votes_table((("v1", "a"),))
    conn = worker.connect_db_from_env()
    with conn.cursor() as cursor:
        assert worker.process_vote(b'{"voter_id": "v1", "vote": "b"}', cursor) is True
    conn.close()
    assert sql("SELECT id, vote FROM votes") == [("v1", "b")]


@pytest.mark.usefixtures("pg_env")
@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'{"vote": "a"}', b'{"voter_id": "", "vote": "a"}',
     b'{"voter_id": 7, "vote": "a"}', b'{"voter_id": "v1", "vote": "c"}', b"\xff\xfe"],
)
def test_process_vote_drops_malformed_messages(raw):
    votes_table()
    conn = worker.connect_db_from_env()
    with conn.cursor() as cursor:
        assert worker.process_vote(raw, cursor) is False
    conn.close()
    assert written_in_order() == []


def test_backoff_doubles_up_to_the_cap():
    delays = worker.backoff_delays(initial=0.5, maximum=3)
    assert [next(delays) for _ in range(6)] == [0.5, 1, 2, 3, 3, 3]


def push(queue, *votes: tuple[str, str]) -> None:
    for voter_id, vote in votes:
        queue.rpush("votes", vote_app.vote_message(voter_id, vote))


def drain(queue, *, connect_db=worker.connect_db_from_env, on_sleep=None) -> tuple[int, list[float]]:
    """Run the worker until the real queue is empty; its backoff pauses are recorded, not slept."""
    sleeps: list[float] = []

    def sleep(delay: float) -> None:
        sleeps.append(delay)
        if on_sleep is not None:
            on_sleep(len(sleeps))

    written = worker.run(redis_client=queue, connect_db=connect_db, sleep=sleep,
                         stop=lambda: _empty(queue))
    return written, sleeps


def _empty(queue) -> bool:
    """The queue is drained; while Redis is down the worker goes on (and backs off)."""
    try:
        return queue.llen("votes") == 0
    except redis.ConnectionError:
        return False


@pytest.mark.usefixtures("pg_env")
def test_run_waits_for_the_database_then_creates_the_table_and_upserts(queue):
    push(queue, ("v1", "a"), ("v2", "b"), ("v1", "b"))
    attempts = []

    def connect_db():  # the database comes up on the third attempt
        attempts.append(1)
        return unreachable_db() if len(attempts) <= 2 else worker.connect_db_from_env()

    written, sleeps = drain(queue, connect_db=connect_db)
    assert written == 3
    assert sleeps == [0.5, 1]
    # The worker made the table (pg_env dropped it); v1's second vote replaced the first.
    assert sql("SELECT id, vote FROM votes ORDER BY id") == [("v1", "b"), ("v2", "b")]
    assert _open_connections() == 0  # the worker closed its connection on the way out


@pytest.mark.usefixtures("pg_env")
def test_run_requeues_a_vote_whose_write_fails_and_reconnects(queue):
    votes_table()
    drop_the_first_write()  # PostgreSQL kills the connection on the first upsert
    push(queue, ("v1", "a"), ("v2", "b"))
    written, sleeps = drain(queue)
    assert written == 2
    assert sleeps == [0.5]
    # v1 was put back at the head, so it is still written before v2.
    assert written_in_order() == [("v1", "a"), ("v2", "b")]
    assert _open_connections() == 0


@pytest.mark.usefixtures("pg_env")
def test_run_backs_off_while_redis_is_unreachable(redis_server, queue):
    push(queue, ("v1", "a"))
    votes_table()
    redis_server.stop()  # a real outage: the worker's pops are refused until the third pause

    def restart(pauses: int) -> None:
        if pauses == 3:
            redis_server.start()
            push(redis_server.client(), ("v1", "a"))  # the new server is empty: queue the vote again

    backends = []
    original = worker.connect_db_from_env

    def connect_db():
        backends.append(1)
        return original()

    written, sleeps = drain(queue, connect_db=connect_db, on_sleep=restart)
    assert written == 1
    assert sleeps == [0.5, 1, 2]
    assert written_in_order() == [("v1", "a")]
    assert len(backends) == 1  # a Redis outage does not churn database connections


@pytest.mark.usefixtures("pg_env")
def test_votes_flow_from_the_queue_through_postgres_to_the_result_api(queue):
    push(queue, ("v1", "a"), ("v2", "b"), ("v3", "a"))
    queue.rpush("votes", b"garbage")
    queue.rpush("votes", vote_app.vote_message("v1", "b"))  # v1 changes their mind
    written = worker.run(redis_client=queue, connect_db=worker.connect_db_from_env,
                         stop=lambda: queue.llen("votes") == 0)
    assert written == 4
    assert sql("SELECT id, vote FROM votes ORDER BY id") == [("v1", "b"), ("v2", "b"), ("v3", "a")]
    response = result_app.create_app().test_client().get("/api/results")
    assert response.get_json() == {
        "option_a": "Cats", "option_b": "Dogs",
        "a": 1, "b": 2, "total": 3, "percent_a": 33, "percent_b": 67,
    }
