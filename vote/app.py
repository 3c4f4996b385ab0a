"""Vote front end of the sample voting app.

Shows a form with two options and pushes each vote as JSON onto the Redis list ``votes``, where
the worker picks it up. A ``voter_id`` cookie makes a second vote from the same browser replace
the first one (the worker upserts by voter id).
"""

from __future__ import annotations

import json
import os
import socket
import uuid

import redis
from flask import Flask, make_response, render_template_string, request

QUEUE = "votes"
COOKIE = "voter_id"
VALID_VOTES = ("a", "b")

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ option_a }} vs {{ option_b }}</title></head>
<body>
  <h1>{{ option_a }} vs {{ option_b }}!</h1>
  <form method="post" action="/">
    <button name="vote" value="a">{{ option_a }}</button>
    <button name="vote" value="b">{{ option_b }}</button>
  </form>
  {% if vote %}
  <p>Thanks, your vote for {{ option_a if vote == "a" else option_b }} is counted.</p>
  {% endif %}
  {% if error %}<p>{{ error }}</p>{% endif %}
  <p><small>Processed by {{ hostname }}</small></p>
</body>
</html>
"""


def vote_message(voter_id: str, vote: str) -> str:
    """The JSON document the worker expects on the ``votes`` list."""
    return json.dumps({"voter_id": voter_id, "vote": vote})


def create_app(
    *,
    redis_client: redis.Redis | None = None,
    option_a: str | None = None,
    option_b: str | None = None,
) -> Flask:
    """Build the app; tests pass their own ``redis_client``, production reads REDIS_HOST."""
    option_a = option_a or os.environ.get("OPTION_A", "Cats")
    option_b = option_b or os.environ.get("OPTION_B", "Dogs")
    if redis_client is None:
        # redis.Redis connects lazily, so importing the module never needs a running Redis.
        redis_client = redis.Redis(
            host=os.environ.get("REDIS_HOST", "redis"), socket_timeout=5, socket_connect_timeout=5
        )
    hostname = socket.gethostname()
    app = Flask(__name__)

    def page(vote: str | None, voter_id: str, *, status: int = 200, error: str = ""):
        body = render_template_string(
            PAGE, option_a=option_a, option_b=option_b, vote=vote, error=error, hostname=hostname
        )
        response = make_response(body, status)
        response.set_cookie(COOKIE, voter_id, httponly=True, samesite="Lax")
        return response

    @app.get("/")
    def index():
        return page(None, request.cookies.get(COOKIE) or uuid.uuid4().hex)

    @app.post("/")
    def cast_vote():
        voter_id = request.cookies.get(COOKIE) or uuid.uuid4().hex
        vote = request.form.get("vote", "")
        if vote not in VALID_VOTES:
            return page(None, voter_id, status=400, error="Please pick one of the two options.")
        try:
            redis_client.rpush(QUEUE, vote_message(voter_id, vote))
        except redis.RedisError as exc:
            app.logger.warning("cannot queue vote: %s", exc)
            return page(None, voter_id, status=503, error="Your vote was not recorded; try again.")
        return page(vote, voter_id)

    @app.get("/healthz")
    def healthz():
        # Liveness only: a Redis outage must not make Kubernetes restart every vote pod.
        return {"status": "ok"}

    return app


app = create_app()
