"""gitops/file_diff.py hands difflib only the changed middle of a file: the diff it prints is what difflib
prints for the whole file whenever lines are unique, and always a patch that turns before into after."""

from __future__ import annotations

import difflib
import random
import re
import subprocess

from buildctl.gitops.file_diff import file_diff

_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


def _whole_file_diff(before: str, after: str) -> str:
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile="a/p", tofile="b/p")
    return "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines)


def _patched(before: str, diff: str) -> str:
    """``diff`` applied to ``before`` (as `patch` reads it: hunk starts, context, -, +, no-newline marks)."""
    old, lines, out, at, k = before.splitlines(keepends=True), diff.splitlines(keepends=True), [], 0, 2
    while k < len(lines):
        hunk = _HUNK.match(lines[k])
        assert hunk, lines[k]
        start = int(hunk[1]) - (hunk[2] != "0")
        out += old[at:start]
        at, k = start, k + 1
        while k < len(lines) and not lines[k].startswith("@@"):
            line, cut = lines[k], k + 1 < len(lines) and lines[k + 1].startswith("\\ No newline")
            body = line[1:-1] if cut else line[1:]
            if line[0] in " -":
                assert old[at].rstrip("\n") == body.rstrip("\n"), (old[at], body)
                at += 1
            if line[0] in " +":
                out.append(body)
            k += 2 if cut else 1
    return "".join(out + old[at:])


def test_the_diff_is_difflibs_and_a_valid_patch() -> None:
    rng = random.Random(20)
    for _ in range(5000):
        unique = rng.random() < 0.5
        before = [(f"line {i}" if unique else rng.choice("abc")) + "\n" for i in range(rng.randrange(30))]
        after = list(before)
        for _ in range(rng.randrange(4)):
            i, op = rng.randrange(len(after) + 1), rng.randrange(3)
            if op == 0:
                after.insert(i, rng.choice(["x\n", "y\n"]))
            elif after:
                after[min(i, len(after) - 1):min(i, len(after) - 1) + 1] = [] if op == 1 else ["z\n"]
        a, b = "".join(before), "".join(after)
        if rng.random() < 0.3:
            b = b.rstrip("\n")
        diff = file_diff("p", a, b)
        assert (diff == "") == (a == b)
        if diff:
            assert _patched(a, diff) == b
        if unique:
            assert diff == _whole_file_diff(a, b)


def _git_applies(tmp_path, before: str, diff: str, after: str) -> None:
    """``diff`` applied by `git apply` (which also checks each hunk's context at a file's ends)."""
    (tmp_path / "p").write_bytes(before.encode())
    subprocess.run(["git", "apply", "-p1", "-"], input=diff.encode(), cwd=tmp_path,
                   check=True, capture_output=True)
    assert (tmp_path / "p").read_bytes() == after.encode()


def test_git_applies_the_diff_even_where_repeated_lines_could_be_matched_elsewhere(tmp_path) -> None:
    # difflib on the middle alone lined these up so the hunk lost its trailing context; git refused it.
    before, after = "a\nb\nb\nb\nb\nb\nb\na\na\nb\n", "a\na\nb\nb\nb\nb\na\na\nb\n"
    _git_applies(tmp_path, before, file_diff("p", before, after), after)
    rng = random.Random(3)
    for _ in range(150):
        before = "".join(rng.choice(["a\n", "b\n", "a\r\n"]) for _ in range(rng.randrange(1, 16)))
        lines = before.splitlines(keepends=True)
        for _ in range(rng.randrange(1, 3)):
            i = rng.randrange(len(lines) + 1)
            lines[i:i + rng.randrange(2)] = [rng.choice(["a\n", "b\n", "c\n"])] * rng.randrange(3)
        after = "".join(lines)
        if after != before:
            _git_applies(tmp_path, before, file_diff("p", before, after), after)
