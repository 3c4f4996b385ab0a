"""Result page of the sample voting app: the current tally, read from Postgres.

The worker owns the ``votes(id text primary key, vote text)`` table; until it has created it
the page simply shows no votes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextlib import closing

import psycopg2
import psycopg2.errors
from flask import Flask, render_template_string

TALLY_SQL = "SELECT vote, COUNT(id) FROM votes GROUP BY vote"

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>{{ option_a }} vs {{ option_b }} -- result</title></head>
<body>
  <h1>{{ option_a }} vs {{ option_b }}</h1>
  <p>{{ option_a }}: {{ tally.a }} ({{ tally.percent_a }}%)</p>
  <p>{{ option_b }}: {{ tally.b }} ({{ tally.percent_b }}%)</p>
  <p>{{ tally.total }} vote{{ "" if tally.total == 1 else "s" }}</p>
</body>
</html>
"""


def tally(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Turn ``(vote, count)`` rows into counts and whole percentages for both options.

    Rows for unknown options are ignored; percentages are 50/50 while nobody has voted.
    """
    counts = {"a": 0, "b": 0}
    for vote, count in rows:
        if vote in counts:
            counts[vote] += int(count)
    total = counts["a"] + counts["b"]
    percent_a = round(100 * counts["a"] / total) if total else 50
    return {**counts, "total": total, "percent_a": percent_a, "percent_b": 100 - percent_a}


def connect_from_env():
    return psycopg2.connect(
        host=os.environ.get("PGHOST", "db"),
        user=os.environ.get("PGUSER", "postgres"),
        password=os.environ.get("PGPASSWORD", "postgres"),
        dbname=os.environ.get("PGDATABASE", "postgres"),
        connect_timeout=5,
    )


def create_app(
    *,
    connect: Callable[[], object] = connect_from_env,
    option_a: str | None = None,
    option_b: str | None = None,
) -> Flask:
    """Build the app; ``connect`` returns a DB-API connection (tests pass a fake)."""
    option_a = option_a or os.environ.get("OPTION_A", "Cats")
    option_b = option_b or os.environ.get("OPTION_B", "Dogs")
    app = Flask(__name__)

    def current_tally() -> dict[str, int] | None:
        """The tally, or None when the database cannot be reached."""
        try:
            # One short-lived connection per request: a sample app with a refresh every 5 s
            # does not need a pool, and a restarted database needs no reconnect logic.
            with closing(connect()) as conn, conn.cursor() as cursor:
                cursor.execute(TALLY_SQL)
                return tally(cursor.fetchall())
        except psycopg2.errors.UndefinedTable:
            return tally(())  # the worker has not created the table yet
        except psycopg2.Error as exc:
            app.logger.warning("cannot read votes: %s", exc)
            return None

    @app.get("/")
    def index():
        result = current_tally()
        if result is None:
            return "Results are unavailable right now.", 503
        return render_template_string(PAGE, option_a=option_a, option_b=option_b, tally=result)

    @app.get("/api/results")
    def api_results():
        result = current_tally()
        if result is None:
            return {"error": "database unavailable"}, 503
        return {"option_a": option_a, "option_b": option_b, **result}

    @app.get("/healthz")
    def healthz():
        # Liveness only: a database outage is reported by the pages, not by restarts.
        return {"status": "ok"}

    return app


app = create_app()
