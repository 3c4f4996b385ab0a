"""A file's edit as `diff -u` shows it (3 lines of context): what `plan --diff`, the record and the
GitOps result print, and what git apply or patch take."""

from __future__ import annotations

import difflib


def file_diff(path: str, before: str, after: str) -> str:
    """``before`` -> ``after`` as `diff -u` shows it (3 lines of context), for git apply or patch."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    out: list[str] = []
    for group in _MiddleMatcher(a, b).get_grouped_opcodes(_CONTEXT):
        if not out:
            out += [f"--- a/{path}\n", f"+++ b/{path}\n"]
        out.append(f"@@ -{_lines(group[0][1], group[-1][2])} +{_lines(group[0][3], group[-1][4])} @@\n")
        for tag, i1, i2, j1, j2 in group:
            out += [" " + line for line in a[i1:i2]] if tag == "equal" else [
                *("-" + line for line in a[i1:i2]), *("+" + line for line in b[j1:j2])]
    # Like git: mark a last line without a newline instead of gluing the next one to it.
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out)


class _MiddleMatcher(difflib.SequenceMatcher):
    """difflib matches every line against every other; an edit changes a few lines in the middle, so
    it is handed only those (1,000 manifests: 0.12 s -> 0.04 s), and the equal head and tail around
    them are opcodes of their own: the hunks then carry the same context a whole-file match gives
    (`git apply` takes a hunk without trailing context to end the file)."""

    def __init__(self, a: list[str], b: list[str]) -> None:
        same = min(len(a), len(b))
        head = next((i for i in range(same) if a[i] != b[i]), same)
        tail = next((i for i in range(same - head) if a[-1 - i] != b[-1 - i]), same - head)
        super().__init__(None, a[head:len(a) - tail], b[head:len(b) - tail])
        self._around = (head, tail, len(a), len(b))

    def get_opcodes(self) -> list[tuple[str, int, int, int, int]]:
        head, tail, la, lb = self._around
        middle = [(tag, i1 + head, i2 + head, j1 + head, j2 + head) for tag, i1, i2, j1, j2 in super().get_opcodes()]
        merged: list[tuple[str, int, int, int, int]] = []
        for op in [("equal", 0, head, 0, head), *middle, ("equal", la - tail, la, lb - tail, lb)]:
            if op[0] == "equal" and op[1] == op[2]:
                continue
            if merged and op[0] == merged[-1][0] == "equal":
                merged[-1] = ("equal", merged[-1][1], op[2], merged[-1][3], op[4])
            else:
                merged.append(op)
        return merged


def _lines(start: int, stop: int) -> str:
    """A hunk's range as unified diffs write it: ``first,count`` (``first`` alone for one line)."""
    count = stop - start
    return str(start + 1) if count == 1 else f"{start + (1 if count else 0)},{count}"


_CONTEXT = 3  # lines of context around each change, as git and diff -u show
