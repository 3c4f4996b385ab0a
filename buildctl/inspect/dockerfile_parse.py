"""Dockerfile parsing for the lint (pure): instructions as BuildKit reads them (continuations,
comments, heredoc bodies, ``# escape=``), and the build stages with their platform, RUN steps and
what they copy from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

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


def parse(text: str, *, path: str, build_args: Mapping[str, str] | None = None) -> tuple[Stage, ...]:
    """The build stages of a Dockerfile; ConfigError (with file:line) when it has no FROM.
    ``build_args`` (``--build-arg``) replace the defaults of the global ARGs they name."""
    args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for line, keyword, rest in _logical_lines(text):
        if keyword == "ARG" and not stages:
            args.update({name: (build_args or {}).get(name, default) for name, default in _arg_defaults(rest).items()})
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
        parent = by_name(earlier, base)
        platform = parent.platform if parent else TARGET  # a stage built FROM a stage inherits it
    return Stage(index, name, line, base, platform)


def _platform_mode(raw: str, args: dict[str, str | None]) -> str | None:
    value = _substitute(raw, args)
    if value in (BUILD, TARGET):
        return value
    if value and _PLATFORM.match(value.lower()):
        return value.lower()
    return None  # e.g. an ARG without default: decided by the caller, not knowable here


def by_name(stages: Sequence[Stage], name: str) -> Stage | None:
    return next((s for s in stages if s.name == name.lower()), None)




# BuildKit sets these per target platform; a default on their ARG replaces that value in every
# platform's build (https://docs.docker.com/build/building/variables/#multi-platform-build-arguments).
PLATFORM_ARGS = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT")


@dataclass(frozen=True)
class ArgDefault:
    stage: int | None  # the stage index it is declared in; None: the global scope (before the first FROM)
    line: int
    name: str
    default: str


def platform_arg_defaults(text: str) -> tuple[ArgDefault, ...]:
    """Every ``ARG`` that gives one of PLATFORM_ARGS a default (even an empty one)."""
    found, stage = [], None
    for line, keyword, rest in _logical_lines(text):
        if keyword == "FROM":
            stage = 0 if stage is None else stage + 1
        elif keyword == "ARG":
            found += [ArgDefault(stage, line, name, default) for name, default in _arg_defaults(rest).items()
                      if name in PLATFORM_ARGS and default is not None]
    return tuple(found)
