"""The run's own `docker login`, scoped to the run, and its renewal when it expires mid-run.

`docker login --password-stdin` through the one subprocess path (the password never reaches argv),
into a run-scoped Docker config (docker_config.py): the user's own config never holds this run's
password, and nothing is left after the run. Not python-on-whales' DockerClient.login: it lets
`docker login` print "Login Succeeded" and its warnings onto our stdout (which --json keeps for one
JSON document) and keeps no error text to report.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from buildctl.engine import docker_config
from buildctl.errors import CommandError, OperationError
from buildctl.programs import ProgramError, run_program

LOGIN_TIMEOUT = 60.0
HINT = "check BUILDCTL_REGISTRY_USERNAME / BUILDCTL_REGISTRY_PASSWORD"

# Credentials this process logged in with, per registry, so that a login that expires mid-run
# (ACR tokens last 3 hours; a long build can outlive one) is renewed — once per registry per run.
_logins: dict[str, tuple[str, str]] = {}
_renewed: dict[str, float] = {}  # registry -> when it was renewed
_login_lock = threading.Lock()
_LOGIN_REFUSED = re.compile(r"\b401\b|unauthorized|incorrect username or password", re.IGNORECASE)


@contextmanager
def scoped_login(registry: str, *, username: str, password: str) -> Iterator[None]:
    """Logged in to ``registry`` for the duration of the block, in a run-scoped Docker config."""
    with docker_config.run_scoped(registry):
        try:
            with _login_lock:
                _docker_login(registry, username, password)
                _logins[registry] = (username, password)
            yield
        finally:
            with _login_lock:
                _logins.pop(registry, None)


def _docker_login(registry: str, username: str, password: str) -> None:
    argv = ["docker", "login", "--username", username, "--password-stdin", registry]
    failed = f"login to {registry} as {username} failed"
    try:
        proc = run_program(argv, what=failed, timeout=LOGIN_TIMEOUT, input=password)
    except ProgramError as exc:  # no docker client, or no answer in time
        raise CommandError(exc.message, command=argv, returncode=-1, output=exc.output.replace(password, "***"),
                           hint=HINT) from None
    if proc.returncode == 0:
        return
    output = proc.stderr.replace(password, "***")
    if _LOGIN_REFUSED.search(output):  # one line: the credentials are wrong
        raise OperationError(f"registry {registry} refused the login of {username!r} (401 Unauthorized)", hint=HINT)
    raise CommandError(failed, command=["docker", "login", registry, "--username", username, "--password-stdin"],
                       returncode=proc.returncode, output=output, hint=HINT)


def renewer(registry: str) -> Callable[[float], bool]:
    """For engine retries: log in again with this run's credentials once, after a 401."""
    def renew(attempt_started: float) -> bool:
        """Log in again with this run's credentials; True if the failed attempt is worth repeating."""
        with _login_lock:
            if registry not in _logins:
                return False  # we never logged in: nothing to renew (the user's own docker login)
            if registry in _renewed:  # once only; another thread's fresh renewal still counts
                return _renewed[registry] >= attempt_started
            _docker_login(registry, *_logins[registry])
            _renewed[registry] = time.monotonic()
            return True

    return renew
