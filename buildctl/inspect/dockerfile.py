"""Dockerfile lint: stages that run RUN steps under QEMU emulation (pure: text in, findings out).

A stage without ``--platform`` runs at the *target* platform, so on an amd64 machine every RUN
step of a linux/arm64 image executes under QEMU — 4x slower here, far more on compile-heavy
builds. A stage whose files are only copied out (``COPY --from``) can usually run on the build
machine's own platform instead and cross-compile (``FROM --platform=$BUILDPLATFORM``, then
``TARGETOS``/``TARGETARCH``); see https://docs.docker.com/build/building/multi-platform/#cross-compilation.
The opposite mistake is flagged too: a final stage pinned to one platform ships that platform's
bytes in every image (the ``exec format error`` this project exists to prevent).

Only stages the build really runs count: those reachable from the target stage through ``FROM
<stage>``, ``COPY/ADD --from`` and ``RUN --mount=from=``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from buildctl import platforms as platforms_of
from buildctl.errors import ConfigError

BUILD = "$BUILDPLATFORM"  # stage mode: the build machine's platform (native, no emulation)
TARGET = "$TARGETPLATFORM"  # stage mode: the platform being built (emulated when foreign)

_DIRECTIVE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(\S+)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # lower-cased, as BuildKit matches stage names
    line: int  # of the FROM instruction
    base: str  # the FROM image or stage, global ARGs substituted where they have defaults
    platform: str | None  # BUILD, TARGET, a literal os/arch[/variant], or None when unresolvable
    runs: tuple[int, ...] = ()  # lines of the RUN instructions
    copies: tuple[tuple[str, int], ...] = ()  # (COPY/ADD --from or RUN --mount from= value, line)

    @property
    def label(self) -> str:
        return self.name or f"#{self.index}"


class Severity(StrEnum):
    ERROR = "error"  # exit 1: every platform's image would carry one architecture's binaries
    WARNING = "warning"  # advice: a stage that could run natively
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    code: str  # emulated-build-stage | emulated-image-stage | pinned-platform
    severity: Severity
    stage: str
    message: str

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


# --------------------------------------------------------------------------- parsing


def _logical_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, KEYWORD, arguments) per instruction: continuations joined, comments and heredoc
    bodies skipped (BuildKit's rules: parser directives only at the top, ``# escape=``)."""
    lines = text.splitlines()
    escape, i = "\\", 0
    while i < len(lines) and (m := _DIRECTIVE.match(lines[i].strip())):
        if m.group(1).lower() == "escape":
            escape = m.group(2)
        i += 1
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start, parts = i + 1, []
        while i < len(lines):
            current = lines[i].rstrip()
            i += 1
            if not current.endswith(escape):
                parts.append(current)
                break
            parts.append(current[: -len(escape)])
            while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                i += 1  # comment and empty lines inside a continuation are dropped
        keyword, _, rest = "".join(parts).strip().partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword in ("RUN", "COPY", "ADD"):
            for dash, _, delimiter in _HEREDOC.findall(rest):
                body = (j for j in range(i, len(lines))
                        if (lines[j].lstrip("\t") if dash else lines[j]).rstrip("\r") == delimiter)
                end = next(body, None)
                if end is not None:  # no closing line: `<<x` was not a heredoc (e.g. inside quotes)
                    i = end + 1
        yield start, keyword, rest


def _flags(rest: str) -> tuple[dict[str, list[str]], list[str]]:
    """``--name=value`` flags (repeatable) and the remaining words of an instruction."""
    words, flags = rest.split(), {}
    while words and words[0].startswith("--"):
        name, sep, value = words.pop(0)[2:].partition("=")
        if not sep and name.lower() == "platform" and words:
            value = words.pop(0)  # `FROM --platform linux/amd64 ...`
        flags.setdefault(name.lower(), []).append(value)
    return flags, words


def _substitute(value: str, args: dict[str, str | None]) -> str | None:
    """``value`` with global ARG defaults substituted; None when a variable has no known value.
    BUILDPLATFORM and TARGETPLATFORM stay as written (normalised to ``$NAME``)."""
    unresolved = False

    def one(m: re.Match[str]) -> str:
        nonlocal unresolved
        var = m.group(1) or m.group(2)
        if var in ("BUILDPLATFORM", "TARGETPLATFORM"):
            return f"${var}"
        if args.get(var) is None:
            unresolved = True
            return ""
        return str(args[var])

    result = _VARIABLE.sub(one, value)
    return None if unresolved else result


def _arg_defaults(rest: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for word in rest.split():
        name, sep, default = word.partition("=")
        out[name] = default.strip("\"'") if sep else None
    return out


def parse(text: str, *, path: str) -> tuple[Stage, ...]:
    """The build stages of a Dockerfile; ConfigError (with file:line) when it has no FROM."""
    args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for line, keyword, rest in _logical_lines(text):
        if keyword == "ARG" and not stages:
            args.update(_arg_defaults(rest))
        elif keyword == "FROM":
            stages.append(_stage(len(stages), line, rest, args, stages, path))
        elif not stages:
            raise ConfigError(f"{keyword} before the first FROM", file=path, line=line)
        elif keyword == "RUN":
            flags, _ = _flags(rest)
            mounts = [(v.split("=", 1)[1], line) for m in flags.get("mount", ()) for v in m.split(",")
                      if v.lower().startswith("from=")]
            last = stages[-1]
            stages[-1] = _with(last, runs=(*last.runs, line), copies=(*last.copies, *mounts))
        elif keyword in ("COPY", "ADD"):
            flags, _ = _flags(rest)
            last = stages[-1]
            stages[-1] = _with(last, copies=(*last.copies, *((v, line) for v in flags.get("from", ()))))
    if not stages:
        raise ConfigError("no FROM instruction: not a Dockerfile", file=path)
    return tuple(stages)


def _with(stage: Stage, **changes) -> Stage:
    return Stage(**{**stage.__dict__, **changes})


def _stage(index: int, line: int, rest: str, args: dict[str, str | None], earlier: Sequence[Stage],
           path: str) -> Stage:  # fmt: skip
    flags, words = _flags(rest)
    if not words:
        raise ConfigError("FROM without an image", file=path, line=line)
    base = _substitute(words[0], args) or words[0]
    name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
    raw = flags.get("platform", [None])[-1]
    if raw is not None:
        platform = _platform_mode(raw, args)
    else:
        parent = _by_name(earlier, base)
        platform = parent.platform if parent else TARGET  # a stage built FROM a stage inherits it
    return Stage(index, name, line, base, platform)


def _platform_mode(raw: str, args: dict[str, str | None]) -> str | None:
    value = _substitute(raw, args)
    if value in (BUILD, TARGET):
        return value
    if value and _PLATFORM.match(value.lower()):
        return value.lower()
    return None  # e.g. an ARG without default: decided by the caller, not knowable here


# --------------------------------------------------------------------------- analysis


def _by_name(stages: Sequence[Stage], name: str) -> Stage | None:
    return next((s for s in stages if s.name == name.lower()), None)


def _resolve(stages: Sequence[Stage], ref: str) -> Stage | None:
    """A ``--from`` value: a stage name or index (anything else is an image)."""
    if ref.isascii() and ref.isdigit():  # "²".isdigit() is True, and int("²") fails
        return stages[int(ref)] if int(ref) < len(stages) else None
    return _by_name(stages, ref)


def _target_stage(stages: Sequence[Stage], target: str | None, path: str) -> Stage:
    if target is None:
        return stages[-1]
    found = _by_name(stages, target)
    if found is None:
        raise ConfigError(f"target stage {target!r} not found", file=path)
    return found


def lint(text: str, *, path: str, platforms: Sequence[str], native: str,
         target: str | None = None) -> tuple[Finding, ...]:  # fmt: skip
    """Findings for building ``text`` for ``platforms`` on a ``native`` machine, sorted by line."""
    stages = parse(text, path=path)
    final = _target_stage(stages, target, path)
    # The image's own filesystem: the target stage and the stages it is built FROM.
    image_chain, stage = [final], final
    while (parent := _by_name(stages[: stage.index], stage.base)) is not None:
        image_chain.append(parent)
        stage = parent
    in_image = {s.index for s in image_chain}
    reachable: dict[int, Stage] = {}
    todo = list(image_chain)
    copied_at: dict[int, int] = {}  # stage index -> a line that copies from it
    while todo:
        stage = todo.pop()
        if stage.index in reachable:
            continue
        reachable[stage.index] = stage
        parent = _by_name(stages[: stage.index], stage.base)
        deps = [parent] if parent else []
        for ref, line in stage.copies:
            if (source := _resolve(stages, ref)) is not None:
                copied_at.setdefault(source.index, line)
                deps.append(source)
        todo.extend(deps)
    foreign = list(platforms_of.foreign(tuple(platforms), native))  # aarch64 = arm64: one Platform type
    findings = [f for s in sorted(reachable.values(), key=lambda s: s.index)
                if (f := _emulation(s, path, foreign, native, in_image=s.index in in_image,
                                    copied_at=copied_at.get(s.index)))]  # fmt: skip
    if (pinned := _pinned(final, path, platforms, native)) is not None:
        findings.append(pinned)
    return tuple(sorted(findings, key=lambda f: f.line))


def _emulated(stage: Stage, foreign: Sequence[str], native: str) -> list[str]:
    if stage.platform == TARGET:
        return list(foreign)
    if stage.platform not in (None, BUILD) and platforms_of.foreign((stage.platform,), native):
        return [stage.platform]
    return []


def _emulation(stage: Stage, path: str, foreign: Sequence[str], native: str, *, in_image: bool,
               copied_at: int | None) -> Finding | None:  # fmt: skip
    emulated = _emulated(stage, foreign, native)
    if not stage.runs or not emulated:
        return None
    plural = "s" if len(stage.runs) != 1 else ""
    where = (f"stage {stage.label}: {len(stage.runs)} RUN step{plural} (line{plural} "
             f"{', '.join(map(str, stage.runs))}) run{'' if plural else 's'} under QEMU emulation for {', '.join(emulated)}")
    if in_image:
        return Finding(path, stage.runs[0], "emulated-image-stage", Severity.INFO, stage.label,
                       f"{where}; this stage becomes the image's filesystem, so only steps that must run inside "
                       "the image belong here — move steps that just produce files (downloads, compiles, installs of "
                       "pure-code dependencies) to a `FROM --platform=$BUILDPLATFORM` stage and COPY --from it")
    return Finding(path, stage.line, "emulated-build-stage", Severity.WARNING, stage.label,
                   f"{where}, yet only its files are used (COPY --from at line {copied_at}): "
                   "`FROM --platform=$BUILDPLATFORM` runs it natively; cross-compile for TARGETOS/TARGETARCH "
                   "(e.g. GOOS=$TARGETOS GOARCH=$TARGETARCH go build)")


def _pinned(final: Stage, path: str, platforms: Sequence[str], native: str) -> Finding | None:
    if final.platform in (None, TARGET):
        return None
    bytes_of = native if final.platform == BUILD else final.platform
    others = list(platforms_of.foreign(tuple(platforms), bytes_of))
    if not others:
        return None
    written = "--platform=$BUILDPLATFORM" if final.platform == BUILD else f"--platform={final.platform}"
    return Finding(path, final.line, "pinned-platform", Severity.ERROR, final.label,
                   f"the final stage is `FROM {written}`: the images for {', '.join(others)} would carry "
                   f"{bytes_of} binaries (exec format error); build the final stage FROM the target platform "
                   "and copy only architecture-independent or cross-compiled files into it")
