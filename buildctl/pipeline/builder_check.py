"""Step 2 beside step 3: the builder is checked while the builds already run on it.

`buildx inspect` takes 0.15-0.3 s, mostly waiting on the builder, and a release whose builder is
as services.yaml says (the usual case) need not wait for it (issue #20). So the builds start at
once, under a `Stop`, and the check runs beside them. Before the check changes anything (removes,
creates or starts the builder), or when it fails, it pulls the Stop: every build ends, and the
release builds again once the builder is ready, or fails with the check's own error. Builds are
kept only when the check found the builder usable as it was when they started.

Only a builder that passed this check before, as configured now, for these platforms, against this
Docker and buildx's builder store (a mark in the user's cache,
``$XDG_CACHE_HOME/buildctl/usable-builders``, removed when a check fails) is built on ahead: a new
machine, a new builder or one that failed waits for the check, so a builder that cannot build the
platforms builds nothing. So does a release that has just registered a binfmt handler: the
builder's platforms are what changed (engine/binfmt.py). A failed emulation probe still stops the
builds.

The mark holds the builder as that check found it (``remembered``), and the check of a builder
built on ahead reads it instead of asking buildx: no `buildx inspect` beside the builds, which on a
2-core agent took CPU from them and, on the docker-container driver, was a second connection to
BuildKit exposed to buildx 0.13's random 1 s reconnect (`http2: ... PROTOCOL_ERROR`). A build needs
no more than that: buildx starts a stopped node and says when a platform is missing. When a build
fails on the builder as remembered, or the check of what was remembered fails (a stale mark: the
builds were stopped), the check runs again on the builder as it is (``again``), and builds stopped
by either check run once more on the builder it made ready.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import Future
from dataclasses import asdict

from buildctl import interrupts, jsonsafe, workdir
from buildctl.engine import binfmt, docker_config
from buildctl.engine import builders as builder
from buildctl.engine.results import BinfmtResult, BuilderReport, BuilderState, EngineInfo, NodeState
from buildctl.inspect import threads
from buildctl.model import BuilderConfig, Config
from buildctl.programs import Stop


FOLDER = workdir.USABLE_BUILDERS


def host_handlers(config: Config, platforms: tuple[str, ...], asking: Future[EngineInfo]) -> tuple[BinfmtResult, ...]:
    """Step 1: this host's binfmt handlers, once ``asking`` (`docker info`) answered. They only
    matter (and are only ours to touch) when the builds run on this engine; emulation is then
    proved where the builds really run: through the builder."""
    info = asking.result()
    if not builder.runs_locally(config.builder, info):
        return ()
    return binfmt.register_host(platforms, native=info.native_platform, config=config.binfmt)


def remembered(cfg: BuilderConfig, platforms: tuple[str, ...]) -> BuilderState | None:
    """The builder as its last passed check found it, when that check was of ``cfg`` as it says
    now, for ``platforms`` (None: no such check, or a mark that does not hold a builder)."""
    raw = workdir.read_mark(FOLDER, _mark(cfg, platforms))
    try:
        doc = jsonsafe.loads(raw) if raw else {}
        state = BuilderState(_text(doc["name"]), _text(doc["driver"]), tuple(_node(n) for n in doc["nodes"]))
    except (ValueError, KeyError, TypeError):  # an older (empty) mark, or not one of ours: check first
        return None
    return state if state.name == cfg.name and state.nodes else None


def _node(node: dict) -> NodeState:
    return NodeState(name=_text(node["name"]), endpoint=_text(node["endpoint"]), status=_text(node["status"]),
                     version=_text(node["version"]), platforms=_texts(node["platforms"]),
                     pinned=_texts(node["pinned"]), error=_text(node["error"]),
                     driver_opts=tuple((key, value) for key, value in map(_texts, node["driver_opts"])))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r:.40}")
    return value


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"not a list: {value!r:.40}")
    return tuple(map(_text, value))


def _remember(cfg: BuilderConfig, platforms: tuple[str, ...], selected: BuilderReport) -> None:
    state = {"name": selected.name, "driver": str(selected.driver),
             "nodes": [{**asdict(n), "driver_opts": [list(kv) for kv in n.driver_opts]} for n in selected.nodes]}
    workdir.set_mark(FOLDER, _mark(cfg, platforms), content=json.dumps(state).encode())


class BuilderCheck:
    """The builder's check and emulation probe, running beside the builds (see the module doc)."""

    def __init__(self, cfg: BuilderConfig, *, platforms: tuple[str, ...], info: EngineInfo,
                 host: tuple[BinfmtResult, ...], read: Future[BuilderState | None] | None,
                 remembered: BuilderState | None = None) -> None:
        """``remembered``: check the builder as the last passed check found it (no buildx call)."""
        # The builds run under it: pulled before the check changes the builder, or when the check
        # or the emulation probe fails (after it, the builds' `exec format error` says less).
        self.stop = Stop(why="the builder check changes the builder, or it failed")
        self._again = lambda: BuilderCheck(cfg, platforms=platforms, info=info, host=host, read=None)
        self.remembered = remembered is not None
        if remembered is not None:
            read = Future()
            read.set_result(remembered)
        # Daemon threads: an interrupted release exits without waiting for them (its children are
        # stopped on exit, interrupts.py).
        self._selected = threads.start(lambda: self._select(cfg, platforms, info, read), name="builder-check")
        self._handlers = threads.start(lambda: self._probe(platforms, host), name="emulation-probe")

    def _select(self, cfg: BuilderConfig, platforms: tuple[str, ...], info: EngineInfo,
                read: Future[BuilderState | None] | None) -> BuilderReport:
        try:
            selected = builder.ensure_builder(cfg, platforms=platforms, info=info, read=read,
                                              before_change=self._changing)
            self.stop.keep()  # usable as it was: the builds begun on it stand
            if not self.remembered:
                _remember(cfg, platforms, selected)
            return selected
        except BaseException:
            self.stop.pull()  # the release fails with this error: no build of it goes on
            workdir.set_mark(FOLDER, _mark(cfg, platforms), present=False)
            raise

    def _changing(self) -> None:
        self.stop.pull()
        if interrupts.interrupted.is_set():  # Ctrl-C while checking: create, remove or start nothing
            raise KeyboardInterrupt

    def _probe(self, platforms: tuple[str, ...], host: tuple[BinfmtResult, ...]) -> tuple[BinfmtResult, ...]:
        # Emulation is proved where the builds run: on this kernel for a builder on the local engine
        # (5 ms); elsewhere by a probe build on the builder (~0.5 s), beside the services' builds —
        # its clear message wins if it fails (the builds would then fail with `exec format error`).
        selected = self._selected.result()
        try:
            if selected.local:
                return binfmt.probe_local(host, builder=selected)
            return binfmt.probe_builder(platforms, builder=selected, host=host)
        except BaseException:
            self.stop.pull()
            raise

    def selected(self) -> BuilderReport:
        """The builder, ready (waits for the check; its error if it failed)."""
        return self._selected.result()

    def handlers(self) -> tuple[BinfmtResult, ...]:
        """The emulation each platform runs under, proved (waits for the probe; its error if it failed)."""
        return self._handlers.result()

    def passed(self) -> bool:
        """Whether the check and the probe passed with the builds' Stop still in (waits for both)."""
        return all(f.exception() is None for f in (self._selected, self._handlers)) and not self.stop.pulled

    def again(self) -> BuilderCheck:
        """A build failed on the builder as remembered: the check of the builder as it is now
        (its own Stop is pulled when it changes the builder: the builds then run again)."""
        return self._again()

    @property
    def stopped(self) -> bool:
        """Whether builds begun before the check were stopped: once ``selected()`` and ``handlers()``
        returned, they must run again, on the builder the check made ready."""
        return self.stop.pulled


def _mark(cfg: BuilderConfig, platforms: tuple[str, ...]) -> str:
    docker = (os.environ.get("DOCKER_HOST", ""), os.environ.get("DOCKER_CONTEXT", ""), _builder_store())
    return hashlib.sha256(repr((cfg, tuple(sorted(platforms)), docker)).encode()).hexdigest()


def _builder_store() -> str:
    """Where buildx keeps its builders: BUILDX_CONFIG, else DOCKER_CONFIG's ``buildx`` folder. Another
    store holds other builders under the same names; a run's scoped config links to the user's
    (engine/docker_config.py), so it resolves to the same store."""
    if os.environ.get("BUILDX_CONFIG"):
        return os.path.realpath(os.environ["BUILDX_CONFIG"])
    return os.path.realpath(docker_config.user_config_dir() / "buildx")
