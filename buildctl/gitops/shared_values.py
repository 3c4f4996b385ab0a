"""Aliases in GitOps files: which value nodes one edit may change without changing others.

An alias (``*a``) makes its anchor's node object the value of another slot too; a splice at the
anchor's one place in the text reaches every slot. Also where a ``<<:`` merge key brings a value.
"""

from __future__ import annotations

from yaml.nodes import Node

from buildctl.errors import ConfigError
from buildctl.gitops.yaml_nodes import children, every_node, line_of

_MANY = 1 << 30  # paths counted, at most


class Sharing:
    """Which nodes one edit may change. An alias (`*a`) makes its anchor's node object the value of
    another slot too, with all under it: spliced at its one place in the text, a new value reaches
    every slot. So the paths from the root to each node are counted (a cycle counts as many): a node
    may change only if every path to it is a site of this edit (``edited``)."""

    def __init__(self, text: str, docs: list[Node]) -> None:
        self.docs = docs  # keeps the ids below alive
        self.slots: dict[int, int] = {}  # id -> parent slots holding the node
        self.edits: dict[int, int] = {}  # id -> sites of this edit reaching the node
        self.paths = self._count() if "&" in text else None  # no anchor, no alias: one path each

    def _count(self) -> dict[int, int]:
        for node in every_node(self.docs):
            for child in children(node):
                self.slots[id(child)] = self.slots.get(id(child), 0) + 1
        waiting = dict(self.slots)
        ready = [d for d in self.docs if id(d) not in waiting]
        paths = {id(d): 1 for d in ready}
        while ready:  # parents before children: a topological order of the node graph
            node = ready.pop()
            for child in children(node):
                paths[id(child)] = min(paths.get(id(child), 0) + paths[id(node)], _MANY)
                waiting[id(child)] -= 1
                if not waiting[id(child)]:
                    ready.append(child)
        return paths

    def edited(self, *nodes: Node) -> None:  # one site of this edit reaches each of ``nodes``
        for node in nodes:
            self.edits[id(node)] = self.edits.get(id(node), 0) + 1

    def check(self, node: Node, *, what: str, path: str, key: Node | None = None, merge: Node | None = None) -> None:
        """ConfigError (file:line) if changing ``node`` (under ``key``, through ``merge``) changes other values."""
        if merge is not None:  # the value is its source's, wherever that is
            raise ConfigError(f"{what} comes through the `<<:` merge key, from the mapping it merges; write "
                              "the key out beside the `<<:`", file=path, line=line_of(merge))
        if self.paths is None or self.paths.get(id(node), _MANY) <= self.edits.get(id(node), 1):
            return
        if key is not None and node.start_mark.index < key.start_mark.index:
            problem, line = f"is an alias of line {line_of(node)}", line_of(key)
        elif self.slots.get(id(node), 0) > 1:
            problem, line = "has an anchor that an alias repeats elsewhere", line_of(node)
        else:
            problem, line = "is inside a node that an alias repeats elsewhere", line_of(node)
        raise ConfigError(f"{what} {problem}, shared with other values; write the value out", file=path, line=line)
