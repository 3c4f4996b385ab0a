"""Running git: the only module that does. Hermetic environment, bounded time, secrets redacted.

The token travels to git in the environment of the git child only, through a credential helper
that reads it from there: never in argv (``ps``), the URL, logs, exceptions or results. Every
command line and output that reaches an error goes through ``Git.redact``.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from buildctl.errors import CommandError, OperationError, UsageError
from buildctl.model import GitOpsConfig
from buildctl.programs import ProgramError, ProgramResult, run_program
from buildctl.redaction import has_credentials, is_url, redact, redact_url, remember_secret

log = logging.getLogger(__name__)

TOKEN_VARIABLES = ("BUILDCTL_GIT_TOKEN", "SYSTEM_ACCESSTOKEN")  # SYSTEM_ACCESSTOKEN: Azure Pipelines
_TOKEN_CHILD_VARIABLE = "BUILDCTL_GIT_TOKEN_VALUE"
_SCOPE_CHILD_VARIABLE = "BUILDCTL_GIT_TOKEN_SCOPE"  # "https://host https://host:443": where the token may go
# git runs a "!" helper with sh and the operation (get/store/erase) as $1; only `get` answers, and
# only when the protocol and host git asks for (its stdin: protocol=…, host=…[:port], maybe path=…)
# are the configured remote's: a remote that redirects elsewhere (HTTP 302 to another host or port)
# gets no token there. The text holds the variables' *names*: sh expands them from the child's env.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || return 0; p=; h=; '
    'while IFS= read -r l; do case $l in protocol=*) p=${l#protocol=};; host=*) h=${l#host=};; esac; done; '
    'w=$(printf %s "$p://$h" | tr A-Z a-z); '
    'case " $' + _SCOPE_CHILD_VARIABLE + ' " in *" $w "*) echo username=buildctl; '
    'echo "password=$' + _TOKEN_CHILD_VARIABLE + '";; esac; }; f'
)
# Exactly the transports buildctl supports, on every git call (GIT_ALLOW_PROTOCOL overrides any
# protocol.*.allow of the user's config): local paths and file://, ssh (and user@host:path), http(s).
# Not ext:: or fd:: (a command / a file descriptor as the remote: `[protocol "ext"] allow = always`
# made `gitops.repo: ext::sh -c …` run a command), nor unauthenticated git://.
ALLOWED_PROTOCOLS = ("file", "ssh", "https", "http")
# The environment that pins it: for git's own children, and for any other program that runs git.
TRANSPORT_POLICY = {"GIT_ALLOW_PROTOCOL": ":".join(ALLOWED_PROTOCOLS)}
_URL_SCHEMES = {"file": "file", "ssh": "ssh", "git+ssh": "ssh", "ssh+git": "ssh", "https": "https", "http": "http"}
_DEFAULT_PORTS = {"https": 443, "http": 80}
# git's own test for `<transport>::<address>` (transport.c): a remote helper runs whatever that is.
_REMOTE_HELPER = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
# Variables that would point our git commands at another repository (e.g. when run from a hook).
_REPOSITORY_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                         "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX")  # fmt: skip
_ASKED_FOR = re.compile(r"could not read (?:Username|Password) for '(?P<url>[^'\s]+)'")
_AUTH_FAILURE = re.compile(r"Authentication failed|could not read (Username|Password)|\b40[13]\b")
GIT_TIMEOUT_SECONDS = 300
# What git (and GitHub, Azure DevOps, GitLab behind it) says when there is no repository at all:
# a path that does not exist or is not a repository, a URL with none behind it.
_NO_REPOSITORY = re.compile(r"does not appear to be a git repository|repository '[^']*' (does not exist|not found)"
                            r"|invalid gitfile format|Repository not found|TF401019|not a git repository")


def no_repository(output: str) -> bool:
    """True when git's ``output`` says there is no repository where it looked (bad input, exit 2)."""
    return _NO_REPOSITORY.search(output) is not None


def missing_repository_error(repo: str, *, key: str) -> UsageError:
    """The one line for a GitOps repository that is not there (``repo`` is shown redacted)."""
    shown = redact_url(repo)
    if is_url(repo):
        what = f"no Git repository at {shown} (or the token cannot see it)"
    elif not Path(repo).exists():
        what = f"the GitOps repository {shown} does not exist"
    else:
        what = f"{shown} is not a Git repository"
    return UsageError(f"{key}: {what}", hint="fix gitops.repo / --gitops-repo (a local path, or a URL "
                      "git can clone; create one with `git init --bare PATH`)")


def git_token_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return next((env[v] for v in TOKEN_VARIABLES if env.get(v)), None)


def check_repo_url(url: str, *, what: str = "the GitOps repository") -> None:
    """Refuse a transport buildctl does not support, and credentials in the URL (an ssh login name,
    ``ssh://git@host``, is not one)."""
    check_transport(url, what=what)
    if not has_credentials(url):
        return
    raise UsageError(
        f"{what} URL {redact_url(url)} contains credentials",
        hint="remove them from the URL and put the token in BUILDCTL_GIT_TOKEN "
        "(SYSTEM_ACCESSTOKEN is used in Azure Pipelines)",
    )


def check_transport(url: str, *, what: str = "the GitOps repository") -> None:
    """Up front, one line, for a remote git would hand to a remote helper (``ext::`` runs a command,
    ``fd::`` waits on a file descriptor until the git timeout) or a scheme outside ALLOWED_PROTOCOLS.
    GIT_ALLOW_PROTOCOL (``Git``) refuses them too: this says so before anything runs."""
    supported = "use https://, http://, ssh:// (or user@host:path), file:// or a local path"
    if helper := _REMOTE_HELPER.match(url):
        raise UsageError(f"{what} {helper.group()}… is a git remote-helper address (ext:: runs a command, "
                         "fd:: reads a file descriptor); buildctl refuses them", hint=supported)
    scheme = _SCHEME.match(url)
    if scheme and scheme["scheme"].lower() not in _URL_SCHEMES:
        raise UsageError(f"{what} {redact_url(url)}: the {scheme['scheme']}:// transport is not supported",
                         hint=supported + " (git:// has no authentication and no integrity)")


class Git:
    """Runs git with a hermetic environment: identity, no prompts, no signing, token via helper."""

    def __init__(self, cfg: GitOpsConfig, *, token: str | None, throwaway: bool,
                 remotes: Sequence[str] | None = None) -> None:  # fmt: skip
        """``remotes``: the URLs the token is for (default: ``cfg.repo``); only their http(s) hosts get it."""
        self._secrets = _secret_forms(token)
        if token:  # one redaction for every secret: error_handler masks it too, wherever it shows up
            remember_secret(token, username="buildctl")
        self._scope = token_scope((cfg.repo,) if remotes is None else remotes) if token else ()
        env = {k: v for k, v in os.environ.items() if k not in _REPOSITORY_VARIABLES}
        env.update(
            TRANSPORT_POLICY,
            GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never", LC_ALL="C",
            GIT_AUTHOR_NAME=cfg.author_name, GIT_AUTHOR_EMAIL=cfg.author_email,
            GIT_COMMITTER_NAME=cfg.author_name, GIT_COMMITTER_EMAIL=cfg.author_email,
        )  # fmt: skip
        settings = [("commit.gpgSign", "false"), ("push.gpgSign", "false"), ("advice.detachedHead", "false")]
        if throwaway:
            # Our own clone: the user's global hooks (e.g. git-lfs) have no business running, and
            # autocrlf must not rewrite line endings behind the byte-exact manifest edits.
            settings += [("core.hooksPath", os.devnull), ("core.autocrlf", "false")]
        if token:
            # An empty helper first resets the list (URL-scoped helpers of the user's config
            # included), so no helper but ours can answer, and ours only for self._scope.
            settings += [("credential.helper", "")]
        if token and self._scope:
            settings += [("credential.helper", _CREDENTIAL_HELPER)]
            env[_TOKEN_CHILD_VARIABLE], env[_SCOPE_CHILD_VARIABLE] = token, " ".join(self._scope)
        count = env.get("GIT_CONFIG_COUNT", "0")
        first = int(count) if count.isdigit() else 0
        for i, (key, value) in enumerate(settings, start=first):
            env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
        env["GIT_CONFIG_COUNT"] = str(first + len(settings))
        self._env = env

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact(text)  # also the registry's secrets (redaction.remember_secret)

    def run(self, *args: str, cwd: Path | None, what: str, input: str | None = None,
            check: bool = True) -> ProgramResult:
        """Run git (through programs.run_program: its own session, bounded, its group stopped on
        Ctrl-C outside a critical section; inside one, e.g. the push, it runs to its end)."""
        argv = ["git", *args]
        shown = [self.redact(a) for a in argv]
        log.debug("running %s", " ".join(shown))
        try:
            proc = run_program(argv, what=what, timeout=GIT_TIMEOUT_SECONDS, input=input, env=self._env, cwd=cwd)
        except ProgramError as exc:  # git not installed, cwd gone, or no answer in time
            raise OperationError(self.redact(exc.message)) from None
        if check and proc.returncode != 0:
            raise self.error(what, shown, proc)
        return proc

    def error(self, what: str, shown: list[str], proc: ProgramResult) -> CommandError:
        output = self.redact(proc.stdout + proc.stderr)
        hint = None
        asked = _ASKED_FOR.search(output)  # git wanted credentials for a URL our token is not for
        if asked and self._secrets and not set(token_scope([asked["url"]])) & set(self._scope):
            hint = (f"the remote redirected to {asked['url']}; buildctl sends the token only to the host of "
                    "gitops.repo (or of the checkout's origin): set it to the URL the remote redirects to")
        elif _AUTH_FAILURE.search(output):
            hint = ("the token was refused: check BUILDCTL_GIT_TOKEN has write access" if self._secrets
                    else "the remote needs credentials: set BUILDCTL_GIT_TOKEN (or SYSTEM_ACCESSTOKEN)")  # fmt: skip
        return CommandError(what, command=shown, returncode=proc.returncode, output=output, hint=hint)


def token_scope(urls: Sequence[str]) -> tuple[str, ...]:
    """``protocol://host[:port]`` as git names them to a credential helper, lower case, for each
    http(s) URL in ``urls`` (with and without its default port); none for ssh, files and paths."""
    forms: list[str] = []
    for url in urls:
        scheme = _SCHEME.match(url)
        name = scheme["scheme"].lower() if scheme else ""
        if name not in _DEFAULT_PORTS:
            continue
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2].lower()
        try:
            port = parts.port
        except ValueError:  # not a port: git refuses the URL itself
            continue
        bare = host[: host.rindex(":")] if port is not None else host
        default = _DEFAULT_PORTS[name]
        ports = ("", f":{default}") if port in (None, default) else (f":{port}",)
        forms += [f"{name}://{bare}{p}" for p in ports]
    return tuple(dict.fromkeys(forms))


def clone_source(repo: str) -> str:
    """A URL git can clone shallowly: local paths become file:// (git ignores --depth for paths)."""
    if is_url(repo):
        return repo  # a URL, or scp-like user@host:path
    return Path(repo).resolve().as_uri()


def _secret_forms(token: str | None) -> tuple[str, ...]:
    """The token as it could leak: raw, and base64 in a Basic authorization header."""
    if not token:
        return ()
    return (base64.b64encode(f"buildctl:{token}".encode()).decode(), base64.b64encode(token.encode()).decode(), token)


def git_version() -> str:
    """`git --version`, for doctor; OperationError when git cannot run."""
    git = Git(GitOpsConfig(repo=""), token=None, throwaway=True)
    return git.run("--version", cwd=None, what="git is not usable").stdout.strip()


def commit_time(path: Path) -> str | None:
    """The commit time (Unix seconds) of HEAD of the git work tree holding ``path``, or None when
    ``path`` is not in one (or has no commit yet): the default SOURCE_DATE_EPOCH of its build."""
    git = Git(GitOpsConfig(repo=""), token=None, throwaway=True)
    proc = git.run("log", "-1", "--format=%ct", cwd=path, what="git log", check=False)
    out = proc.stdout.strip()
    return out if proc.returncode == 0 and out.isdigit() else None


def last_change_time(paths: Sequence[Path], *, cwd: Path,
                     lines: tuple[Path, int, int] | None = None) -> str | None:
    """The commit time (Unix seconds) of the last commit that touched any of ``paths`` or, with
    ``lines`` = (file, first, last), that range of lines of the file (`git log -L`, which follows
    the lines through earlier edits above them); None outside git or before any such commit."""
    git = Git(GitOpsConfig(repo=""), token=None, throwaway=True)
    times = []
    proc = git.run("log", "-1", "--format=%ct", "--", *map(str, paths), cwd=cwd, what="git log", check=False)
    times.append(proc.stdout.strip() if proc.returncode == 0 else "")
    if lines is not None:
        file, first, last = lines
        proc = git.run("log", "-1", "--format=%ct", "-s", f"-L{first},{last}:{file.name}", cwd=file.parent,
                       what="git log -L", check=False)  # fails for a file git does not track: no time from it
        times.append(proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout.strip() else "")
    found = [int(t) for t in times if t.isdigit()]
    return str(max(found)) if found else None


def commits_touching(folder: Path, *, limit: int) -> list[tuple[str, tuple[str, ...]]] | None:
    """The last ``limit`` commits that changed something under ``folder``, newest first: (commit
    time, the files it changed, relative to ``folder``; both sides of a rename). [] when git has
    none (no commit yet, or none of the folder); None when no repository holds ``folder``, nor
    any folder above it (git looks upwards: then no git command run in or below it can succeed)."""
    git = Git(GitOpsConfig(repo=""), token=None, throwaway=True)
    proc = git.run("log", f"-n{limit}", "--no-renames", "--format=%x01%ct", "--name-only", "--relative", "-z",
                   "--", ".", cwd=folder, what="git log", check=False)
    if proc.returncode != 0:  # git speaks C here (LC_ALL=C in its environment)
        return None if "not a git repository" in proc.stderr else []
    out = []
    for chunk in proc.stdout.split("\x01")[1:]:  # "<time>\0\n<file>\0<file>\0..."
        when, _, names = chunk.partition("\0")
        names = names[1:] if names.startswith("\n") else names
        out.append((when.strip(), tuple(n for n in names.split("\0") if n)))
    return out


def head_commit(path: Path) -> str:
    """The full hash of HEAD of the git work tree holding ``path``, or "" outside one (or before
    its first commit): the source commit native agents record and the merge compares."""
    git = Git(GitOpsConfig(repo=""), token=None, throwaway=True)
    proc = git.run("rev-parse", "--verify", "HEAD^{commit}", cwd=path, what="git rev-parse", check=False)
    out = proc.stdout.strip()
    return out if proc.returncode == 0 and len(out) in (40, 64) else ""


def tracked_changes(path: Path) -> bool:
    """Does the work tree holding ``path`` differ from its HEAD in a tracked file? (A build from it
    is not the build of its commit.) False outside git."""
    git = Git(GitOpsConfig(repo=""), token=None, throwaway=True)
    proc = git.run("status", "--porcelain", "--untracked-files=no", cwd=path, what="git status", check=False)
    return proc.returncode == 0 and bool(proc.stdout.strip())
