"""Module loading, a throwaway Redis and a throwaway PostgreSQL for tests/e2e/test_sample_apps.py.

Both servers are the real Debian programs (redis-server, PostgreSQL 15; `scripts/stack.sh
test-packages` installs them), each on a Unix socket in a temporary folder, so nothing listens on
the network. Failures are real too: a client pointed at a socket nobody serves, a server that is
started only after the worker's third retry, a backend that PostgreSQL itself terminates mid-write.
Without the programs the tests fail under CI and skip on a laptop, like the engine tests.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

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


def _missing(what: str) -> None:
    message = f"{what} is not installed (scripts/stack.sh test-packages installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the sample-app tests, but {message}")
    pytest.skip(message)


# --------------------------------------------------------------------------- real Redis


# redis-py 6 retries a failed command 3 times with backoff by itself: the worker's own backoff is
# what these tests measure, and a refused connection should fail at once.
_NO_RETRY = Retry(NoBackoff(), 0)


class RedisServer:
    """A redis-server on a Unix socket; ``stop()`` and ``start()`` make a real outage."""

    def __init__(self, directory: Path) -> None:
        self.socket = directory / "redis.sock"
        self.directory = directory
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server") or _missing("redis-server")
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(self.socket), "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None

    def client(self) -> redis.Redis:
        # Like worker.redis_from_env: a socket timeout that outlasts BLPOP's wait.
        return redis.Redis(unix_socket_path=str(self.socket), socket_timeout=worker.POP_TIMEOUT_SECONDS + 5,
                           socket_connect_timeout=5, retry=_NO_RETRY)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    directory = Path(tempfile.mkdtemp(prefix="sample-redis-"))
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def queue(redis_server: RedisServer) -> redis.Redis:
    """A client of the real Redis, its database emptied."""
    client = redis_server.client()
    client.flushdb()
    return client


def unreachable_redis(tmp_path: Path) -> redis.Redis:
    """A client of a socket no server listens on: every command fails as a refused connection would."""
    return redis.Redis(unix_socket_path=str(tmp_path / "nobody.sock"), socket_connect_timeout=1, retry=_NO_RETRY)


# --------------------------------------------------------------------------- real PostgreSQL


@pytest.fixture(scope="module")
def postgres_socket_dir():
    """Start a throwaway PostgreSQL cluster on a Unix socket only; yields the socket directory."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not bins:
        _missing("the PostgreSQL server")
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
    sql("DROP TABLE IF EXISTS votes, vote_log; DROP SEQUENCE IF EXISTS drops; "
        "DROP FUNCTION IF EXISTS drop_first_write, log_write CASCADE")


def sql(statement: str, params=None) -> list[tuple]:
    """Run one statement on the throwaway cluster (PGHOST set by pg_env); its rows, if any."""
    conn = worker.connect_db_from_env()
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        conn.close()


def votes_table(rows: tuple[tuple[str, str], ...] = ()) -> None:
    """The worker's votes table, made before the worker runs (its CREATE TABLE IF NOT EXISTS is then
    a no-op), with a log of every write in the order PostgreSQL performed them."""
    sql(worker.CREATE_TABLE_SQL)
    sql("CREATE TABLE vote_log (n SERIAL PRIMARY KEY, id TEXT, vote TEXT)")
    sql("CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO vote_log (id, vote) VALUES (NEW.id, NEW.vote); RETURN NEW; END $$")
    sql("CREATE TRIGGER log_write AFTER INSERT OR UPDATE ON votes FOR EACH ROW EXECUTE FUNCTION log_write()")
    for voter_id, vote in rows:
        sql("INSERT INTO votes (id, vote) VALUES (%s, %s)", (voter_id, vote))
    sql("TRUNCATE vote_log")


def drop_the_first_write() -> None:
    """PostgreSQL terminates the backend that makes the first write to votes (a lost connection
    mid-write, for real). A sequence counts the writes: it is not rolled back with the write."""
    sql("CREATE SEQUENCE drops")
    sql("CREATE FUNCTION drop_first_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF nextval('drops') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; "
        "RETURN NEW; END $$")
    sql("CREATE TRIGGER drop_first_write BEFORE INSERT OR UPDATE ON votes FOR EACH ROW "
        "EXECUTE FUNCTION drop_first_write()")


def written_in_order() -> list[tuple[str, str]]:
    return sql("SELECT id, vote FROM vote_log ORDER BY n")


_NO_SERVER_HERE = tempfile.mkdtemp(prefix="sample-no-pg-")  # an empty folder: no socket in it


def unreachable_db():
    """A connect() that fails as a database not yet started does: no server on that socket."""
    return psycopg2.connect(host=_NO_SERVER_HERE, user="postgres", dbname="postgres", connect_timeout=2)
