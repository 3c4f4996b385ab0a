"""YAML that expands or nests (issue #14): alias bombs, cycles, deep nesting, merge keys.

Each hostile document is refused in well under a second, with file:line, before anything is
expanded; merge keys (`<<: *defaults`) work as in docker compose files.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from buildctl.config import yaml_source
from buildctl.config.loader import load_config
from buildctl.config.yaml_bounds import MAX_DEPTH, MAX_NODES
from buildctl.config.yaml_source import load_yaml
from buildctl.errors import ConfigError
from tests.helpers.cli import named

SERVICE = "services:\n  api: {context: api, image: team/api}\n"


def laughs(levels: int, width: int = 9) -> str:
    """The "billion laughs": each level an anchor holding ``width`` aliases of the one before."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def refused(tmp_path: Path, text: str) -> tuple[str, float]:
    path = tmp_path / "services.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_yaml(path, shown_as="services.yaml", environ={})
    return info.value.message, time.monotonic() - started


@pytest.mark.parametrize(("text", "message"), [
    (laughs(9), f"services.yaml:6: aliases expand the document past {MAX_NODES} nodes (an alias bomb?)"),
    # The bomb as a mapping key: keys are never constructed unless they are scalars.
    (laughs(8) + "services:\n  ? *a8\n  : 1\n", f"services.yaml:6: aliases expand the document past {MAX_NODES} nodes (an alias bomb?)"),
    # Wide, not deep: 2 levels of 400 aliases of a 400-item list.
    ("a: &a [" + ", ".join(["x"] * 400) + "]\nb: &b [" + ", ".join(["*a"] * 400) + "]\n",
     f"services.yaml:2: aliases expand the document past {MAX_NODES} nodes (an alias bomb?)"),
    ("a: &a [1, *a]\n" + SERVICE, "services.yaml:1: alias *a is inside the node it refers to (a cycle)"),
    ("a: &a {b: {c: *a}}\n" + SERVICE, "services.yaml:1: alias *a is inside the node it refers to (a cycle)"),
    ("x: " + "[" * 5000 + "]" * 5000 + "\n", f"services.yaml:1: nested deeper than {MAX_DEPTH} levels"),
    ("x:\n" + "".join("  " * i + "- \n" for i in range(1, 200)), f"services.yaml:{MAX_DEPTH + 1}: nested deeper than {MAX_DEPTH} levels"),
    # Deep only once aliases are expanded: 40 levels, aliased twice below 40 more.
    ("a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n",
     f"services.yaml:2: alias *a nests the document deeper than {MAX_DEPTH} levels"),
    ("services:\n  api:\n    <<: [1, 2]\n", "services.yaml:3: services.api: `<<:` merges a mapping or a list of mappings (e.g. <<: *defaults)"),
    ("services:\n  api:\n    <<: plain\n", "services.yaml:3: services.api: `<<:` merges a mapping or a list of mappings (e.g. <<: *defaults)"),
    ("services:\n  ? [a, b]\n  : 1\n", "services.yaml:2: services: keys must be strings, got a list"),
], ids=["billion-laughs", "bomb-as-key", "wide-bomb", "cycle-list", "cycle-mapping", "deep-flow",
        "deep-block", "deep-through-alias", "merge-list-of-scalars", "merge-scalar", "list-as-key"])
def test_hostile_yaml_is_refused_quickly_with_a_line(tmp_path: Path, text: str, message: str) -> None:
    got, seconds = refused(tmp_path, text)
    assert got == message
    # Refused before anything is expanded: an unbounded expansion takes minutes or runs out of
    # memory. The bound is that, not a speed goal (a loaded CI machine takes ~1.5 s for deep-flow).
    assert seconds < 5.0, f"took {seconds:.2f} s"


def test_the_limits_leave_room_for_real_files(tmp_path: Path) -> None:
    """1,000 services with shared settings through an alias each: far below the bounds."""
    text = "x-defaults: &d {context: api, platforms: [linux/amd64, linux/arm64]}\nservices:\n"
    text += "".join(f"  s{i}: {{<<: *d, image: team/s{i}}}\n" for i in range(1000))
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "services.yaml").write_text(text)
    cfg = load_config(tmp_path / "services.yaml", environ={})
    assert len(cfg.services) == 1000 and named(cfg.services, "s999").platforms == ("linux/amd64", "linux/arm64")


def test_merge_keys_merge_like_docker_compose(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "services.yaml").write_text(
        "x-base: &base {context: api, image: team/base, platforms: [linux/amd64]}\n"
        "x-args: &args {build_args: {A: '1'}, platforms: [linux/arm64]}\n"
        "services:\n"
        "  api:\n"
        "    <<: [*base, *args]\n"  # the earlier mapping wins (platforms from *base)
        "    image: team/api\n"  # a key written out wins over a merged one
        "  web: {<<: *base, image: team/web}\n")
    cfg = load_config(tmp_path / "services.yaml", environ={})
    api, web = named(cfg.services, "api"), named(cfg.services, "web")
    assert (api.image, api.platforms, dict(api.build_args)) == ("team/api", ("linux/amd64",), {"A": "1"})
    assert (web.image, web.platforms) == ("team/web", ("linux/amd64",))


def test_a_merged_value_reports_the_line_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "services.yaml").write_text(
        "x-base: &base\n  context: nowhere\n  image: team/base\nservices:\n  api:\n    <<: *base\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "services.yaml", environ={})
    assert info.value.message.endswith("services.api.context: context folder 'nowhere' does not exist")
    assert info.value.line == 2


def test_an_explicit_duplicate_is_still_refused(tmp_path: Path) -> None:
    message, _ = refused(tmp_path, "x: &x {a: 1}\ny:\n  <<: *x\n  b: 1\n  b: 2\n")
    assert message == "services.yaml:5: y.b: duplicate key"


def test_bounds_apply_without_libyaml_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_source, "_FAST_LOADER", None)
    message, seconds = refused(tmp_path, laughs(9))
    assert message == f"services.yaml:6: aliases expand the document past {MAX_NODES} nodes (an alias bomb?)"
    message, _ = refused(tmp_path, "x: " + "[" * 3000 + "]" * 3000 + "\n")
    assert message == f"services.yaml:1: nested deeper than {MAX_DEPTH} levels"
    assert seconds < 2.0


@pytest.mark.parametrize("fast", [True, False], ids=["libyaml", "pure-python"])
def test_a_large_file_without_aliases_is_not_an_alias_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           fast: bool) -> None:
    # 120,000 nodes written out (a ~1 MB manifest bundle is bigger): only what aliases add counts.
    if not fast:
        monkeypatch.setattr(yaml_source, "_FAST_LOADER", None)
    path = tmp_path / "services.yaml"
    path.write_text("x-items:\n" + "".join(f"  - k{i}: v{i}\n" for i in range(40_000)) + SERVICE)
    doc = load_yaml(path, shown_as="services.yaml", environ={})
    assert len(doc.data["x-items"]) == 40_000 and doc.line_of(("services", "api")) == 40_003


@pytest.mark.parametrize(("text", "refused_at"), [
    (laughs(4), None),  # 74,718 nodes added by aliases: inside the bound
    (laughs(5), 6),
    ("a: &a [" + ", ".join(["x"] * 300) + "]\nb: [" + ", ".join(["*a"] * 332) + "]\n", None),  # 99,932 added
    ("a: &a [" + ", ".join(["x"] * 300) + "]\nb: [" + ", ".join(["*a"] * 333) + "]\n", 2),  # 100,233
    ("x: " + "[" * 63 + "]" * 63 + "\n", None),  # the mapping and 63 lists: 64 levels
    ("x: " + "[" * 64 + "]" * 64 + "\n", 1),
    ("a: &a " + "[" * 32 + "]" * 32 + "\nb: " + "[" * 31 + "*a" + "]" * 31 + "\n", None),  # 1 + 31 + 32 levels
    ("a: &a " + "[" * 32 + "]" * 32 + "\nb: " + "[" * 32 + "*a" + "]" * 32 + "\n", 2),
], ids=["laughs-4", "laughs-5", "wide-at", "wide-past", "depth-64", "depth-65", "alias-depth-64", "alias-depth-65"])
def test_the_bounds_are_drawn_at_the_same_line_by_both_parsers(tmp_path: Path, text: str,
                                                                refused_at: int | None) -> None:
    import yaml  # libyaml's event stream and the pure-Python one: one verdict

    verdicts = []
    for loader in (yaml.CSafeLoader, yaml.SafeLoader):
        try:
            yaml_source.check_bounds(text, "f.yaml", loader)
            verdicts.append(None)
        except ConfigError as exc:
            verdicts.append(exc.line)
    assert verdicts == [refused_at, refused_at]
