"""Fakes, module loading and a throwaway PostgreSQL for tests/test_sample_apps.py.

Redis cannot run here, so FakeRedis goes in through the injection points the services offer
(``create_app(redis_client=...)``, ``run(redis_client=...)``); FakeDatabase scripts database
failures. Everything the SQL must really do runs against ``postgres_socket_dir``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]


def load(name: str, path: Path):
    # vote/app.py and result/app.py share a module name, so load each under its own.
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


vote_app = load("sample_vote_app", ROOT / "vote" / "app.py")
result_app = load("sample_result_app", ROOT / "result" / "app.py")
worker = load("sample_worker", ROOT / "worker" / "worker.py")


# --------------------------------------------------------------------------- fakes


class FakeRedis:
    """The list commands the services use, on one in-memory list per key."""

    def __init__(self, *, fail_pops: int = 0, fail_pushes: bool = False):
        self.lists: dict[str, list[bytes]] = {}
        self.fail_pops = fail_pops
        self.fail_pushes = fail_pushes

    @staticmethod
    def _bytes(value) -> bytes:
        return value.encode() if isinstance(value, str) else value

    def rpush(self, key, value):
        if self.fail_pushes:
            raise redis.ConnectionError("Error -2 connecting to redis:6379.")
        self.lists.setdefault(key, []).append(self._bytes(value))

    def lpush(self, key, value):
        self.lists.setdefault(key, []).insert(0, self._bytes(value))

    def blpop(self, key, timeout=0):
        if self.fail_pops:
            self.fail_pops -= 1
            raise redis.ConnectionError("Connection refused")
        items = self.lists.get(key)
        return (key.encode(), items.pop(0)) if items else None


class FakeCursor:
    def __init__(self, conn):
        self.conn = conn
        self.rows: list[tuple] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, params=None):
        self.conn.executes += 1
        if self.conn.executes == self.conn.drop_at_execute:
            raise psycopg2.OperationalError("server closed the connection unexpectedly")
        if self.conn.raise_on_execute is not None:
            raise self.conn.raise_on_execute
        self.conn.db.statements.append((sql, params))
        self.rows = list(self.conn.db.rows)

    def fetchall(self):
        return self.rows


class FakeConnection:
    def __init__(self, db, *, drop_at_execute=None, raise_on_execute=None):
        self.db = db
        self.executes = 0
        self.drop_at_execute = drop_at_execute  # this (1-based) execute fails as a lost connection
        self.raise_on_execute = raise_on_execute
        self.closed = False

    def cursor(self):
        return FakeCursor(self)

    def close(self):
        self.closed = True


class FakeDatabase:
    """Hands out connections; ``outcomes`` scripts what each successive connect does."""

    def __init__(self, *, rows=(), outcomes=()):
        self.rows = list(rows)
        self.outcomes = list(outcomes)  # each: an exception to raise, or kwargs for the connection
        self.statements: list[tuple[str, object]] = []
        self.connections: list[FakeConnection] = []

    def connect(self):
        outcome = self.outcomes.pop(0) if self.outcomes else {}
        if isinstance(outcome, Exception):
            raise outcome
        conn = FakeConnection(self, **outcome)
        self.connections.append(conn)
        return conn


def queued(*votes: tuple[str, str]) -> FakeRedis:
    queue = FakeRedis()
    for voter_id, vote in votes:
        queue.rpush("votes", json.dumps({"voter_id": voter_id, "vote": vote}))
    return queue


# --------------------------------------------------------------------------- real PostgreSQL


@pytest.fixture(scope="module")
def postgres_socket_dir():
    """Start a throwaway PostgreSQL cluster on a Unix socket only; yields the socket directory."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not bins:
        pytest.skip("PostgreSQL server binaries not installed")
    bin_dir = bins[-1]
    base = Path(tempfile.mkdtemp(prefix="sample-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        owner = pwd.getpwnam("postgres")
        os.chown(base, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, log = base / "data", base / "server.log"
    try:
        subprocess.run(
            [*as_owner, bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust"],
            check=True, capture_output=True, timeout=120,
        )
        subprocess.run(
            [*as_owner, bin_dir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "start",
             "-o", f"-c listen_addresses='' -k {base}"],
            check=True, capture_output=True, timeout=120,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"cannot start PostgreSQL: {exc.stderr.decode(errors='replace')[-2000:]}")
    yield str(base)
    subprocess.run([*as_owner, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
                   capture_output=True, timeout=60)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_env(postgres_socket_dir, monkeypatch):
    """The services' PG* variables pointed at the throwaway cluster, with no votes table."""
    monkeypatch.setenv("PGHOST", postgres_socket_dir)
    for name in ("PGUSER", "PGPASSWORD", "PGDATABASE", "OPTION_A", "OPTION_B"):
        monkeypatch.delenv(name, raising=False)  # so the services use their defaults
    conn = worker.connect_db_from_env()
    with conn.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS votes")
    conn.close()
