"""Input-addressed releases: a service whose inputs (inputs/key.py) equal those of an index already
released is not rebuilt; its new release tag points at that index.

The earlier index is found under a pointer tag, ``REPO:buildctl-inputs-v1-<hex>``, written after a
release passed its gate and was tagged. Only what is bound to digests is trusted: the index the
pointer names is read (its digest is that of the bytes read, whatever the registry claims) and
must carry ``dev.buildctl.inputs`` with exactly this input digest, and every manifest it lists
must still be there. Anything else (no pointer, an
index deleted behind buildctl's back, another digest) builds — so a release tag never dangles.

When the inputs are known and a build happens, it runs with ``--pull``: the key was computed on the
base digests the registry has now, and a builder's cached older base would otherwise be baked into
an image filed under the new key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from buildctl import concurrently
from buildctl.engine.results import BuilderAction, BuilderReport
from buildctl.errors import OperationError
from buildctl.inputs import key as keys
from buildctl.inputs.context import context_entries
from buildctl.inspect.results import ResolvedBase
from buildctl.model import BuilderConfig
from buildctl.pipeline.plan import Plan, ServicePlan
from buildctl.pipeline.results import ServiceOutcome
from buildctl.registry.client import RegistryClient

log = logging.getLogger(__name__)

LAST_TAG = f"{keys.POINTER_PREFIX}last"  # REPO:LAST_TAG: the index released last (its bases: what moved)
REBUILD = "--rebuild asks for a build"


@dataclass(frozen=True)
class ReuseInputs:
    """What a release decides reuse with: the base digests found in preflight, and the flags."""

    bases: tuple[ResolvedBase, ...]
    rebuild: bool = False  # --rebuild: build every service
    nightly: bool = False  # --nightly: every build pulls (also one whose inputs cannot be known)


@dataclass(frozen=True)
class Decision:
    service: str
    inputs: str | None  # the input digest; None when it cannot be known (``why``)
    reused: str | None = None  # the released index with these inputs (digest): not rebuilt
    pointer: str | None = None  # REPO:TAG of the pointer that named it
    why: str = ""  # why the service is built
    bases: tuple[keys.Base, ...] = ()
    moved: tuple[str, ...] = ()  # bases moved since the last release: "REF (PLATFORM): OLD -> NEW"


def decide(plan: Plan, *, client: RegistryClient, bases: tuple[ResolvedBase, ...],
           rebuild: bool = False, on_build: Callable[[], None] | None = None) -> dict[str, Decision]:
    """Per service: reused (and from where) or built (and why). The plan's build options are the
    run's: its --pull / --no-cache defeat reuse. ``on_build`` hears at once (on the service's
    thread) that a service will be built, before the other decisions have ended."""
    configs = {s.name: s for s in plan.config.services}
    building = on_build or (lambda: None)

    def one(svc: ServicePlan) -> Decision:
        mine = tuple(keys.Base(b.reference, p, d) for b in bases if b.service == svc.name for p, d in b.digests)
        spec = svc.build
        try:
            dockerfile = spec.dockerfile.read_text(encoding="utf-8", errors="surrogateescape")
            why = keys.unknowable(dockerfile, bases=mine, secrets=bool(configs[svc.name].secrets),
                                  pull=spec.options.pull, no_cache=spec.options.no_cache)
            entries = () if why else context_entries(spec.context, spec.dockerfile)
        except OSError as exc:  # the build reads them too, and says so better: just build
            why = f"the context could not be read here: {exc.strerror or exc}"
        if why:
            building()
            return Decision(svc.name, None, why=why, bases=mine)
        inputs = keys.Inputs(
            entries=entries, dockerfile=dockerfile, platforms=spec.platforms,
            build_args=spec.build_args, target=spec.target, labels=spec.options.labels, bases=mine,
            source_date_epoch=spec.source_date_epoch,
            outputs={"provenance": str(spec.options.provenance), "sbom": str(spec.options.sbom),
                     "rewrite-timestamp": str(spec.rewrite_timestamp)})
        digest = keys.input_digest(inputs)
        pointer = f"{svc.repository}:{keys.pointer_tag(digest)}"
        found = None if rebuild else find(client, pointer, digest)
        if found:
            return Decision(svc.name, digest, reused=found, pointer=pointer, bases=mine)
        building()
        why = REBUILD if rebuild else "no index released with these inputs"
        return Decision(svc.name, digest, pointer=pointer, why=why, bases=mine, moved=_moved(client, svc, mine))

    return {d.service: d for d in concurrently.each(one, plan.services, name="reuse")}


def find(client: RegistryClient, pointer: str, digest: str) -> str | None:
    """The index digest ``pointer`` names when that index is there, whole, and built from ``digest``."""
    repository = pointer.rsplit(":", 1)[0]
    try:
        index = client.find_manifest(pointer)  # by tag, but its digest is that of the bytes read
        if index is None:
            return None
        body = index.json() if index.is_index else {}
        if (body.get("annotations") or {}).get(keys.ANNOTATION) != digest:
            log.info("%s names %s, which was not built from %s: building", pointer, index.digest, digest)
            return None
        children = [child["digest"] for child in body.get("manifests") or []]
        # Each platform's manifest and attestation, at once (in sequence: 4 round trips a service).
        present = concurrently.each(lambda child: client.head_manifest(f"{repository}@{child}") is not None,
                                    children, name="reuse-child")
        for child, there in zip(children, present, strict=True):
            if not there:
                log.info("%s: %s lists %s, which is gone: building", pointer, index.digest, child)
                return None
        return index.digest
    except (OperationError, KeyError, TypeError, ValueError) as exc:
        log.info("looking up %s failed (%s): building", pointer, exc)
        return None


def _moved(client: RegistryClient, svc: ServicePlan, bases: tuple[keys.Base, ...]) -> tuple[str, ...]:
    """The bases whose digests differ from those of the index released last (its annotation)."""
    try:
        if (last := client.find_manifest(f"{svc.repository}:{LAST_TAG}")) is None:
            return ()
        body = last.json()
    except (OperationError, ValueError) as exc:
        log.info("reading %s:%s failed: %s", svc.repository, LAST_TAG, exc)
        return ()
    old = keys.parse_bases_annotation((body.get("annotations") or {}).get(keys.BASES_ANNOTATION, ""))
    return keys.moved_bases(old, bases)


def builds_anything(plan: Plan, decisions: Mapping[str, Decision]) -> bool:
    """Does the release need the builder (and emulation)? Not when every service is reused and none
    has a smoke command to run under emulation."""
    return any(not (d := decisions.get(s.name)) or not d.reused or s.smoke for s in plan.services)


def no_builder(cfg: BuilderConfig) -> BuilderReport:
    """The record's builder when nothing was built: named, not looked at."""
    return BuilderReport(cfg.name, str(cfg.driver), BuilderAction.NOT_NEEDED, ())


def apply(plan: Plan, decisions: Mapping[str, Decision], *, nightly: bool = False) -> Plan:
    """The plan with each known input digest annotated on its index and built with --pull (module
    docstring); a nightly run pulls every base anyway."""
    services = []
    for svc in plan.services:
        decision = decisions.get(svc.name)
        spec = svc.build
        if decision is not None and decision.inputs:
            notes = {f"index:{keys.ANNOTATION}": decision.inputs,
                     f"index:{keys.BASES_ANNOTATION}": keys.bases_annotation(decision.bases)}
            spec = replace(spec, annotations=notes, options=replace(spec.options, pull=True))
        elif nightly:
            spec = replace(spec, options=replace(spec.options, pull=True))
        services.append(replace(svc, build=spec))
    return replace(plan, services=tuple(services))


def publish_pointers(outcomes: tuple[ServiceOutcome, ...], decisions: Mapping[str, Decision],
                     client: RegistryClient) -> None:
    """After the tags: REPO:POINTER (and REPO:LAST_TAG) name each released index with a known input
    digest. A copy of the index's bytes, so the pointer is the very digest that was verified. A
    failed write only costs the next run a build."""
    def one(outcome: ServiceOutcome) -> None:
        decision = decisions.get(outcome.service)
        # The index this run built (or reused): it carries the annotation. When the release tag
        # kept an identical older index, that one may not, and the pointer names this run's.
        digest = outcome.build.index_digest
        if decision is None or not decision.inputs or not outcome.tagged or not digest:
            return
        try:
            index = client.get_manifest(f"{outcome.repository}@{digest}")
            if (index.json().get("annotations") or {}).get(keys.ANNOTATION) != decision.inputs:
                return
            tags = (LAST_TAG,) if outcome.build.reused_from else (keys.pointer_tag(decision.inputs), LAST_TAG)
            concurrently.each(lambda tag: client.put_manifest(f"{outcome.repository}:{tag}", index.content,
                                                              index.media_type), tags, name="pointer-tag")
        except OperationError as exc:
            log.warning("could not write the reuse pointer of %s: %s", outcome.service, exc)

    concurrently.each(one, outcomes, name="pointer")
