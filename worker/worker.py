"""Worker of the sample voting app: moves votes from the Redis list ``votes`` into Postgres.

Each vote is a JSON document ``{"voter_id": ..., "vote": "a"|"b"}``; a voter's later vote
replaces the earlier one (upsert on the voter id). Lost connections to either store are
re-established with capped exponential backoff, so the worker can start before Redis and
Postgres are ready.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import psycopg2
import redis

QUEUE = "votes"
POP_TIMEOUT_SECONDS = 5  # bounds how long a stop request waits for BLPOP to return
VALID_VOTES = ("a", "b")
CREATE_TABLE_SQL = "CREATE TABLE IF NOT EXISTS votes (id TEXT PRIMARY KEY, vote TEXT NOT NULL)"
UPSERT_SQL = (
    "INSERT INTO votes (id, vote) VALUES (%s, %s) "
    "ON CONFLICT (id) DO UPDATE SET vote = EXCLUDED.vote"
)

log = logging.getLogger("worker")


def parse_vote(raw: bytes | str) -> tuple[str, str] | None:
    """``(voter_id, vote)`` from a queued message, or None if the message is malformed."""
    try:
        message = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(message, dict):
        return None
    voter_id, vote = message.get("voter_id"), message.get("vote")
    if not isinstance(voter_id, str) or not voter_id or vote not in VALID_VOTES:
        return None
    return voter_id, vote


def process_vote(raw: bytes | str, cursor) -> bool:
    """Upsert one queued vote; False (and nothing written) for a malformed message."""
    parsed = parse_vote(raw)
    if parsed is None:
        log.warning("dropping malformed vote %r", raw[:200])
        return False
    cursor.execute(UPSERT_SQL, parsed)
    return True


def backoff_delays(*, initial: float = 0.5, maximum: float = 30.0) -> Iterator[float]:
    """0.5, 1, 2, 4 ... seconds, capped at ``maximum``.

    Hand-written rather than tenacity: the local base image carries only Debian's python3-*
    packages and no pip, and this loop is all the retrying the worker needs.
    """
    delay = initial
    while True:
        yield delay
        delay = min(delay * 2, maximum)


def connect_db_from_env():
    conn = psycopg2.connect(
        host=os.environ.get("PGHOST", "db"),
        user=os.environ.get("PGUSER", "postgres"),
        password=os.environ.get("PGPASSWORD", "postgres"),
        dbname=os.environ.get("PGDATABASE", "postgres"),
        connect_timeout=5,
    )
    conn.autocommit = True  # every vote is committed on its own
    return conn


def redis_from_env() -> redis.Redis:
    # The socket timeout must outlast BLPOP's server-side wait, or every idle poll would fail.
    return redis.Redis(
        host=os.environ.get("REDIS_HOST", "redis"),
        socket_timeout=POP_TIMEOUT_SECONDS + 5,
        socket_connect_timeout=5,
    )


def run(
    *,
    redis_client,
    connect_db: Callable[[], object],
    stop: Callable[[], bool],
    sleep: Callable[[float], object] = time.sleep,
) -> int:
    """Move votes until ``stop()`` is true; returns how many votes were written.

    A vote popped from Redis whose write fails is pushed back to the head of the list, so a
    database outage delays votes instead of losing them.
    """
    written = 0
    conn = None
    delays = backoff_delays()
    while not stop():
        try:
            if conn is None:
                conn = connect_db()
                with conn.cursor() as cursor:
                    cursor.execute(CREATE_TABLE_SQL)
                log.info("connected to the database")
            item = redis_client.blpop(QUEUE, timeout=POP_TIMEOUT_SECONDS)
            if item is None:
                continue
            raw = item[1]
            try:
                with conn.cursor() as cursor:
                    written += process_vote(raw, cursor)
            except psycopg2.Error:
                conn = _discard(conn)
                redis_client.lpush(QUEUE, raw)  # back to the head: it is the next one popped
                raise
            delays = backoff_delays()  # a full round trip worked: start backing off afresh
        except (redis.RedisError, psycopg2.Error) as exc:
            delay = next(delays)
            log.warning("%s: %s; retrying in %.1fs", type(exc).__name__, str(exc).strip(), delay)
            if isinstance(exc, psycopg2.Error):
                conn = _discard(conn)
            sleep(delay)
    _discard(conn)
    return written


def _discard(conn) -> None:
    """Close a connection that may already be broken; always returns None."""
    if conn is not None:
        with contextlib.suppress(psycopg2.Error):  # already broken; the caller connects afresh
            conn.close()
    return None


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stopping = threading.Event()
    # Kubernetes stops pods with SIGTERM; finish the vote in hand instead of dying mid-write.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    written = run(
        redis_client=redis_from_env(),
        connect_db=connect_db_from_env,
        stop=stopping.is_set,
        sleep=stopping.wait,  # a stop request cuts a backoff pause short
    )
    log.info("stopped after writing %d votes", written)


if __name__ == "__main__":
    main()
