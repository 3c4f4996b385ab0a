"""The examples that end every verb's --help (issue #15), kept apart so cli.py stays about parsing.

Each is a real command line: tests/test_cli_examples.py parses every one and runs it with --help,
so a renamed verb or flag breaks a test instead of a user's copy-paste.
"""

from __future__ import annotations

import textwrap

from buildctl.errors import EXIT_CODES

EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "plan": (
        ("buildctl plan", "what a release would build, push and change"),
        ("buildctl plan vote --tag 1.4.0 --json", "one service, as JSON"),
        ("buildctl plan --diff", "also the manifest diff (reads the GitOps repository)"),
    ),
    "doctor": (
        ("buildctl doctor", "is this machine ready to release?"),
        ("buildctl doctor --dockerfile", "RUN steps that emulation makes slow"),
        ("buildctl doctor -c deploy/services.yaml --json", "another project, as JSON"),
    ),
    "binfmt": (
        ("buildctl binfmt", "register QEMU for the configured foreign platforms"),
        ("buildctl binfmt --method image", "with the pinned installer image (CI agents)"),
    ),
    "builder": (
        ("buildctl builder", "select or create the configured builder"),
        ("buildctl builder --recreate-builder", "replace it when its nodes differ"),
        ("buildctl builder -f deploy/services.yaml --builder ci", "another project, another builder name"),
    ),
    "build": (
        ("buildctl build", "build, push, verify and tag every service; no Git"),
        ("buildctl build vote worker --tag 1.4.0 --jobs 2", "two services, two at a time"),
        ("buildctl build --local --platform linux/arm64 vote", "one platform into the local engine, no push"),
    ),
    "run": (
        ("buildctl run --dry-run", "the buildx commands, tags and manifest diff; runs nothing"),
        ("buildctl run --tag 1.4.0 --record release.json", "the whole release"),
        ("buildctl run --nightly --progress plain --metadata-file metadata.json", "the nightly rebuild, for a CI log"),
    ),
    "verify": (
        ("buildctl verify 127.0.0.1:5000/voting-app/vote:1.4.0", "the configured platforms"),
        ("buildctl verify myacr.azurecr.io/app:2 --platform linux/arm64 --allow-extra-platforms",
         "arm64 at least"),
        ("buildctl verify myacr.azurecr.io/app:2 --platform linux/amd64,linux/arm64 --json",
         "exactly these two, as JSON"),
    ),
    "update-manifests": (
        ("buildctl update-manifests --record release.json --dry-run", "the diff only"),
        ("buildctl update-manifests --record release.json --check", "exit 1 when manifests drifted"),
        ("buildctl update-manifests --record release.json --gitops-repo ../gitops --in-place",
         "edit a local checkout"),
    ),
    "rollback": (
        ("buildctl rollback 41 --dry-run", "the diff that deploys 41 again; changes nothing"),
        ("buildctl rollback 41 --record rollback.json", "every service back to 41: one commit"),
        ("buildctl rollback 41 vote worker --json", "two services only, as JSON"),
    ),
    "completion": (
        ("buildctl completion bash > ~/.local/share/bash-completion/completions/buildctl", "bash"),
        ("buildctl completion zsh > \"${fpath[1]}/_buildctl\"", "zsh"),
        ("buildctl completion fish > ~/.config/fish/completions/buildctl.fish", "fish"),
    ),
    "schema": (
        ("buildctl schema > services.schema.json", "for editors: # yaml-language-server: $schema=..."),
        ("buildctl schema | jq '.properties.services'", "one section"),
    ),
}


def exit_codes() -> str:
    """The exit codes, from errors.EXIT_CODES (the one place they are defined), one per line."""
    rows = (textwrap.fill(meaning, width=76, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
            for code, meaning in EXIT_CODES)  # as written, within 80 columns (click does not rewrap \b)
    return "Exit codes:\n\n\b\n" + "\n".join(rows)


def epilog(verb: str) -> str:
    """The exit codes, then 'Examples:' and per example a `# why` line and the command: pasted
    whole, it is a valid shell snippet. click rewraps every paragraph except one that starts with \\b."""
    lines = [line for command, why in EXAMPLES[verb] for line in (f"  # {why}", f"  {command}")]
    return exit_codes() + "\n\nExamples:\n\n\b\n" + "\n".join(lines)