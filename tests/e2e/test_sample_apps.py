"""Tests of the sample voting app services (vote/, result/, worker/).

Fakes and the throwaway PostgreSQL cluster live in tests/sample_apps_fixtures.py.
"""

from __future__ import annotations

import json

import psycopg2
import pytest

from tests.helpers.sample_apps import (
    FakeDatabase,
    FakeRedis,
    pg_env,  # noqa: F401 -- fixture, used by name
    postgres_socket_dir,  # noqa: F401 -- fixture, requested by pg_env
    queued,
    result_app,
    vote_app,
    worker,
)

# --------------------------------------------------------------------------- vote


@pytest.fixture
def queue():
    return FakeRedis()


@pytest.fixture
def vote_client(queue):
    app = vote_app.create_app(redis_client=queue, option_a="Tabs", option_b="Spaces")
    return app.test_client()


def test_vote_pushes_json_with_the_voters_cookie_id(vote_client, queue):
    vote_client.set_cookie("voter_id", "voter-42")
    response = vote_client.post("/", data={"vote": "b"})
    assert response.status_code == 200
    assert [json.loads(m) for m in queue.lists["votes"]] == [{"voter_id": "voter-42", "vote": "b"}]
    assert "your vote for Spaces" in response.get_data(as_text=True)


def test_first_vote_gets_a_new_voter_id_cookie_matching_the_queued_vote(vote_client, queue):
    response = vote_client.post("/", data={"vote": "a"})
    cookie = vote_client.get_cookie("voter_id")
    assert cookie is not None and len(cookie.value) == 32
    assert json.loads(queue.lists["votes"][0]) == {"voter_id": cookie.value, "vote": "a"}
    assert "HttpOnly" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("form", [{"vote": "c"}, {"vote": ""}, {}])
def test_invalid_vote_is_rejected_and_not_queued(vote_client, queue, form):
    assert vote_client.post("/", data=form).status_code == 400
    assert queue.lists == {}


def test_unreachable_redis_is_a_503_page_not_a_crash(vote_client, queue):
    queue.fail_pushes = True
    response = vote_client.post("/", data={"vote": "a"})
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


def test_vote_healthz_does_not_touch_redis():
    # Any Redis call on a plain object() fails, so a 200 proves healthz never uses Redis.
    client = vote_app.create_app(redis_client=object()).test_client()
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


def test_api_results_reads_the_tally_and_closes_the_connection():
    db = FakeDatabase(rows=[("a", 5), ("b", 7)])
    app = result_app.create_app(connect=db.connect, option_a="Tabs", option_b="Spaces")
    response = app.test_client().get("/api/results")
    assert response.status_code == 200
    assert response.get_json() == {
        "option_a": "Tabs", "option_b": "Spaces",
        "a": 5, "b": 7, "total": 12, "percent_a": 42, "percent_b": 58,
    }
    assert db.statements == [("SELECT vote, COUNT(id) FROM votes GROUP BY vote", None)]
    assert [c.closed for c in db.connections] == [True]


def test_result_page_shows_counts():
    db = FakeDatabase(rows=[("a", 1)])
    page = result_app.create_app(connect=db.connect).test_client().get("/").get_data(as_text=True)
    assert "Cats: 1 (100%)" in page and "Dogs: 0 (0%)" in page and "1 vote<" in page


def test_unreachable_database_is_a_503_not_a_crash():
    db = FakeDatabase(outcomes=[psycopg2.OperationalError("could not connect to server")] * 2)
    client = result_app.create_app(connect=db.connect).test_client()
    assert client.get("/api/results").status_code == 503
    assert client.get("/").status_code == 503
    assert client.get("/healthz").status_code == 200


# --------------------------------------------------------------------------- worker

UPSERT = (
    "INSERT INTO votes (id, vote) VALUES (%s, %s) "
    "ON CONFLICT (id) DO UPDATE SET vote = EXCLUDED.vote"
)
CREATE = "CREATE TABLE IF NOT EXISTS votes (id TEXT PRIMARY KEY, vote TEXT NOT NULL)"


def test_process_vote_upserts_by_voter_id():
    db = FakeDatabase()
    with db.connect().cursor() as cursor:
        assert worker.process_vote(b'{"voter_id": "v1", "vote": "b"}', cursor) is True
    assert db.statements == [(UPSERT, ("v1", "b"))]


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'{"vote": "a"}', b'{"voter_id": "", "vote": "a"}',
     b'{"voter_id": 7, "vote": "a"}', b'{"voter_id": "v1", "vote": "c"}', b"\xff\xfe"],
)
def test_process_vote_drops_malformed_messages(raw):
    db = FakeDatabase()
    with db.connect().cursor() as cursor:
        assert worker.process_vote(raw, cursor) is False
    assert db.statements == []


def test_backoff_doubles_up_to_the_cap():
    delays = worker.backoff_delays(initial=0.5, maximum=3)
    assert [next(delays) for _ in range(6)] == [0.5, 1, 2, 3, 3, 3]


def run_until_drained(queue: FakeRedis, db: FakeDatabase) -> tuple[int, list[float]]:
    sleeps: list[float] = []
    written = worker.run(
        redis_client=queue, connect_db=db.connect,
        stop=lambda: not queue.lists.get("votes") and not queue.fail_pops, sleep=sleeps.append,
    )
    return written, sleeps


def test_run_waits_for_the_database_then_creates_the_table_and_upserts():
    queue = queued(("v1", "a"), ("v2", "b"), ("v1", "b"))
    refused = psycopg2.OperationalError("could not connect to server")
    db = FakeDatabase(outcomes=[refused, refused])
    written, sleeps = run_until_drained(queue, db)
    assert written == 3
    assert sleeps == [0.5, 1]
    assert db.statements == [
        (CREATE, None), (UPSERT, ("v1", "a")), (UPSERT, ("v2", "b")), (UPSERT, ("v1", "b")),
    ]
    assert db.connections[-1].closed


def test_run_requeues_a_vote_whose_write_fails_and_reconnects():
    queue = queued(("v1", "a"), ("v2", "b"))
    # First connection: CREATE TABLE works, then the connection drops on the first upsert.
    db = FakeDatabase(outcomes=[{"drop_at_execute": 2}])
    written, sleeps = run_until_drained(queue, db)
    assert written == 2
    assert sleeps == [0.5]
    # v1 was put back at the head, so it is still written before v2.
    assert db.statements == [
        (CREATE, None), (CREATE, None), (UPSERT, ("v1", "a")), (UPSERT, ("v2", "b")),
    ]
    assert [c.closed for c in db.connections] == [True, True]


def test_run_backs_off_while_redis_is_unreachable():
    queue = queued(("v1", "a"))
    queue.fail_pops = 3
    db = FakeDatabase()
    written, sleeps = run_until_drained(queue, db)
    assert written == 1
    assert sleeps == [0.5, 1, 2]
    assert db.statements[-1] == (UPSERT, ("v1", "a"))
    assert len(db.connections) == 1  # a Redis outage does not churn database connections


# --------------------------------------------------------------------------- real PostgreSQL


@pytest.mark.usefixtures("pg_env")
def test_result_reads_no_votes_before_the_worker_created_the_table():
    response = result_app.create_app().test_client().get("/api/results")
    assert response.status_code == 200 and response.get_json()["total"] == 0


@pytest.mark.usefixtures("pg_env")
def test_votes_flow_from_the_queue_through_postgres_to_the_result_api():
    queue = queued(("v1", "a"), ("v2", "b"), ("v3", "a"))
    queue.rpush("votes", b"garbage")
    queue.rpush("votes", vote_app.vote_message("v1", "b"))  # v1 changes their mind
    written = worker.run(
        redis_client=queue, connect_db=worker.connect_db_from_env,
        stop=lambda: not queue.lists.get("votes"),
    )
    assert written == 4
    conn = worker.connect_db_from_env()
    with conn.cursor() as cursor:
        cursor.execute("SELECT id, vote FROM votes ORDER BY id")
        assert cursor.fetchall() == [("v1", "b"), ("v2", "b"), ("v3", "a")]
    conn.close()
    response = result_app.create_app().test_client().get("/api/results")
    assert response.get_json() == {
        "option_a": "Cats", "option_b": "Dogs",
        "a": 1, "b": 2, "total": 3, "percent_a": 33, "percent_b": 67,
    }
