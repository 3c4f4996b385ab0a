"""Where Helm values are written, and the value at a dotted key path there (pure).

A values mapping (a values file, an Argo CD Application's ``helm.valuesObject``) is walked key by
key; a numeric part indexes a list (``sidecars.0.image.tag``). An Application's ``helm.parameters``
(``[{name: image.tag, value: "1.4"}]``, also what Argo CD Image Updater writes to
``.argocd-source-<app>.yaml``) is read by ``name``: Argo CD gives a parameter precedence over
valuesObject, so a key set in both is edited where it wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from buildctl.errors import ConfigError
from buildctl.gitops.yaml_nodes import Slot, get, line_of, lookup, scalar


@dataclass(frozen=True)
class ValuesRoot:
    node: Node  # the values mapping, or the parameters list
    label: str  # "" for a values file; "spec.source.helm.parameters", ... in an Application
    parameters: bool = False


def find_slot(roots: tuple[ValuesRoot, ...], dotted: str, *, path: str) -> Slot:
    """The slot of ``dotted`` in the first root that has it; ConfigError (file:line) if none does."""
    for root in roots:
        if (slot := _slot(root, dotted, path=path, required=False)) is not None:
            return slot
    if len(roots) == 1:
        slot = _slot(roots[0], dotted, path=path, required=True)
        assert slot is not None
        return slot
    places = " nor ".join(f"`{r.label}`" for r in roots)
    raise ConfigError(f"helm key {dotted} is set in neither {places}; add it where the image is set",
                      file=path, line=line_of(roots[0].node))


def has(roots: tuple[ValuesRoot, ...], dotted: str, *, path: str) -> bool:
    return any(_slot(r, dotted, path=path, required=False) is not None for r in roots)


def _slot(root: ValuesRoot, dotted: str, *, path: str, required: bool) -> Slot | None:
    return _parameter(root.node, dotted, path=path) if root.parameters else _walk(root.node, dotted, path=path,
                                                                                     required=required)


def _parameter(params: Node, dotted: str, *, path: str) -> Slot | None:
    entries = [e for e in params.value if isinstance(e, MappingNode) and scalar(get(e, "name")) == dotted] \
        if isinstance(params, SequenceNode) else []
    if len(entries) > 1:
        raise ConfigError(f"helm parameter {dotted} appears {len(entries)} times", file=path, line=line_of(entries[1]))
    if not entries:
        return None
    slot = lookup(entries[0], "value")
    if slot is None or not isinstance(slot.value, ScalarNode):
        raise ConfigError(f"helm parameter {dotted} has no string `value`", file=path, line=line_of(entries[0]))
    return slot


def _walk(doc: Node, dotted: str, *, path: str, required: bool) -> Slot | None:
    node, walked, slot = doc, [], None
    for key in dotted.split("."):
        here = ".".join(walked)
        if isinstance(node, SequenceNode):
            if not key.isdigit():
                raise ConfigError(f"`{here}` is a list: name an item by its number ({here}.0.…, for {dotted})",
                                  file=path, line=line_of(node))
            if int(key) >= len(node.value):
                if not required:
                    return None
                raise ConfigError(f"`{here}` has {len(node.value)} item(s), no item {key} (helm key {dotted})",
                                  file=path, line=line_of(node))
            slot = Slot(node.value[int(key)], node.value[int(key)])
        elif isinstance(node, MappingNode):
            matches = [(k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == key]
            if len(matches) > 1:
                raise ConfigError(f"key `{'.'.join([*walked, key])}` appears {len(matches)} times", file=path,
                                  line=line_of(matches[1][1]))
            slot = Slot(*matches[0]) if matches else lookup(node, key)  # else: from a `<<:` merge, if any
            if slot is None:
                if not required:
                    return None
                where = f"under `{here}`" if walked else "at the top level"
                raise ConfigError(f"no key `{key}` {where} (helm key {dotted}); add it to the values file",
                                  file=path, line=line_of(node))
        else:
            if not required:
                return None
            raise ConfigError(f"`{here}` is not a mapping, so it has no `{key}` (for {dotted})",
                              file=path, line=line_of(node))
        walked.append(key)
        node = slot.value
    if not isinstance(node, ScalarNode) or slot is None:
        raise ConfigError(f"`{dotted}` is a {'mapping' if isinstance(node, MappingNode) else 'list'}, "
                          "expected a string", file=path, line=line_of(node))
    return slot
