"""How the kernel starts a command in an image: argv[0], each ``#!`` interpreter, ``env``'s program,
down to ELF files. Pure, over image_fs's ``FileSystem``.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from buildctl.inspect import elf
from buildctl.inspect.image_fs import (
    BINPRM_BUF_SIZE,
    DEFAULT_PATH,
    Entry,
    FileSystem,
    ResolveError,
    find_program,
)
from buildctl.inspect.users import Account

# fs/exec.c exec_binprm: one execve rewrites the file it runs 5 times at most (a 6th #! script
# is -ELOOP, "too many levels of symbolic links"; measured with docker run: 5 nested scripts run).
MAX_SCRIPTS = 5
MAX_EXECS = 8  # env hops followed (env runs a script that runs env...): a bound for loops, no kernel limit


@dataclass(frozen=True)
class Resolution:
    """How a command starts: the chain of files exec'd, and the ELF binaries among them."""

    chain: tuple[str, ...]  # e.g. ("/usr/local/bin/gunicorn", "/usr/bin/python3.11")
    binaries: tuple[tuple[str, elf.ElfIdent], ...]
    refused: tuple[tuple[str, str], ...] = ()  # (ELF binary, why execve refuses it: elf.exec_problem)


def parse_shebang(head: bytes) -> tuple[str, str] | None:
    """``#!/path/interp optional-arg`` -> (interpreter, arg), exactly as fs/binfmt_script.c reads
    the first BINPRM_BUF_SIZE bytes: the line ends at ``\n``, only spaces and tabs are trimmed
    (a ``\r`` stays part of the interpreter or its argument), the interpreter ends at a space, tab
    or NUL, and everything after it is one argument. None when the kernel would refuse the file."""
    if not head.startswith(b"#!"):
        return None
    if len(head) < BINPRM_BUF_SIZE:  # the whole file: the kernel's buffer holds it NUL-padded, so a
        head += b"\0"  # last line without its newline still ends (binfmt_script.c: "trailing NUL padding")
    line, newline, _ = head[2:].partition(b"\n")
    if not newline and not any(c in line.lstrip(b" \t") for c in b" \t\0"):
        return None  # no newline in the buffer and no terminator: the path may be cut (ENOEXEC)
    line = line.strip(b" \t")
    name_end = min((i for i in (line.find(b" "), line.find(b"\t"), line.find(b"\0")) if i >= 0), default=len(line))
    interpreter = line[:name_end]
    arg = line[name_end:].split(b"\0", 1)[0].strip(b" \t") if line[name_end:name_end + 1] != b"\0" else b""
    if not interpreter:
        return None
    return interpreter.decode("utf-8", "surrogateescape"), arg.decode("utf-8", "surrogateescape")


def _crlf(name: str, arg: str) -> bool:
    return name.endswith("\r") or arg.endswith("\r")


def _env_program(args: Sequence[str]) -> str | None:
    """The program ``env [-S] [-i] [-u NAME] [NAME=value...] program`` runs."""
    skip_next = False
    for token in args:
        if skip_next:
            skip_next = False
        elif token in ("-u", "--unset", "-C", "--chdir"):
            skip_next = True
        elif not token.startswith("-") and "=" not in token:
            return token
    return None


def resolve_command(
    fs: FileSystem, argv: Sequence[str], *, path_env: str | None = None, workdir: str = "/",
    account: Account | None = None,
) -> Resolution:
    """Find what the kernel runs for ``argv``: argv[0], then each #! interpreter, down to ELF files.

    ``env`` (as argv[0] or as a #! interpreter) is followed to the program it runs, looked up in
    PATH; both env and that program must be ELF files for the platform. One execve runs through
    MAX_SCRIPTS nested #! scripts at most; env's exec of its program counts afresh.

    With ``account`` (the image's User, not root; users.py), the #! script an interpreter opens
    must be readable by it, and what env execs (its program, that one's #! interpreters) executable
    by it: runc's capabilities end with the first execve. An outer script of nested ones is only an
    argument to the inner one, which may never open it: not checked.
    """
    if not argv or not argv[0]:
        raise ResolveError("empty command")
    search_path = path_env if path_env is not None else DEFAULT_PATH
    name, args = argv[0], list(argv[1:])
    real, entry = find_program(fs, name, path_env=search_path, workdir=workdir)
    chain = [real]
    binaries: list[tuple[str, elf.ElfIdent]] = []
    refused: list[tuple[str, str]] = []
    scripts, execs, started = 0, 0, argv[0]
    opened: tuple[str, Entry] | None = None  # the #! script the ELF interpreter at the end opens
    runs, who = None, ""  # until env's exec, any x bit will do (runc holds CAP_DAC_OVERRIDE)
    while True:
        if scripts > MAX_SCRIPTS:  # the kernel refuses before it looks at the file
            raise ResolveError(f"too many levels of interpreters starting {started}: more than {MAX_SCRIPTS} "
                               "nested #! scripts, which the kernel refuses (ELOOP)")
        shebang = parse_shebang(entry.head)
        if shebang is not None:
            script = real
            opened = (real, entry)
            scripts += 1
            name, arg = shebang
            args = [a for a in arg.replace("\t", " ").split(" ") if a] if arg else []  # \r is no separator
            try:
                # The kernel does not search PATH for an interpreter: a relative one is cwd-relative.
                real, entry = find_program(fs, name if "/" in name else f"./{name}", path_env=search_path,
                                           workdir=workdir, runs=runs, who=who)
                chain.append(real)
                if _crlf(name, arg) and posixpath.basename(name) == "env":
                    program = _env_program(args)  # env -S splits off the \r itself
                    if program is not None:
                        find_program(fs, program, path_env=search_path, workdir=workdir)
                elif _crlf(name, arg):  # sh, bash, python3 all refuse "-e\r" ("Illegal option -")
                    raise ResolveError(f"{real} gets the argument {json.dumps(arg)}, which no interpreter "
                                       "accepts")
            except ResolveError as exc:
                if _crlf(name, arg):
                    runs = json.dumps("#!" + name + (" " + arg if arg else ""))  # shows the \r escaped
                    why = str(exc).replace("\r", "\\r")
                    raise ResolveError(f"{script} has a CRLF line ending: the kernel runs {runs}; {why}") from None
                raise
            continue
        if not elf.is_elf(entry.head):
            raise ResolveError(f"{real} is neither an ELF binary nor a #! script")
        try:
            binaries.append((real, elf.parse_ident(entry.head)))
        except ValueError as exc:
            raise ResolveError(f"{real}: {exc}") from None
        if why := elf.exec_problem(entry.head, entry.problem):
            refused.append((real, why))
        is_env = posixpath.basename(name) == "env"
        program = _env_program(args) if is_env else None
        if program is None:
            if opened is not None and account is not None and not is_env and not account.may(opened[1], 4):
                script, held = opened
                raise ResolveError(f"{script} cannot be read by {account}, as its interpreter {real} opens it "
                                   f"(mode {held.mode:04o}, owner {held.uid}:{held.gid}): Permission denied")
            return Resolution(tuple(chain), tuple(binaries), tuple(refused))
        execs += 1
        if execs > MAX_EXECS:
            raise ResolveError(f"too many levels of interpreters starting {argv[0]}: {MAX_EXECS} env hops and no end")
        # env execs its program itself: a new execve, whose #! rewrites the kernel counts from 0
        name, args, scripts, started = program, [], 0, program
        if account is not None:  # env's execvp is the user's own: the kernel dropped the capabilities
            runs, who = account.may_execute, str(account)
        real, entry = find_program(fs, program, path_env=search_path, workdir=workdir, runs=runs, who=who)
        chain.append(real)
