"""Command line: parse and dispatch to one command per verb; the renderer prints the result.

No pipeline logic lives here, and no exit code is decided here: error_handler.py maps outcomes
to exit codes; the options several verbs share are declared in cli_options.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from buildctl import cli_completion, error_handler, errors
from buildctl.cli_examples import epilog, exit_codes
from buildctl.cli_options import (
    DEFAULT_CONFIG, BuilderOpt, ByDigestOpt, ConfigOpt, FromOpt, JobsOpt, JsonOpt, MetadataOut, NoCacheOpt,
    PlatformOpt, ProgressMode, ProgressOpt, PullOpt, QuietOpt, RebuildOpt, RecordOut, RecreateOpt, RegistryOpt,
    RetagOpt, ServicesArg, TagOpt, Deferred, configured_platforms, display_for, finite, load, platform_list,
    progress_mode,
)
from buildctl.engine import early_info


render = Deferred("buildctl.output.render")  # rich: not for --help (issue #15)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},  # -h as docker buildx takes it
    epilog=exit_codes(),
    help="Safe multi-architecture container releases: build, verify the bytes, then update GitOps manifests.",
)
_load = load


def _version(value: bool) -> None:
    if value:
        from buildctl import __version__

        typer.echo(f"buildctl {__version__}")
        raise typer.Exit(errors.EXIT_OK)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    error_handler.configure(debug=debug)


@app.command(epilog=epilog("plan"))
def plan(services: ServicesArg = None, config: ConfigOpt = DEFAULT_CONFIG, tag: TagOpt = None,
         registry: RegistryOpt = None, builder: BuilderOpt = None, json: JsonOpt = False,
         pull: PullOpt = False, no_cache: NoCacheOpt = False,
         diff: Annotated[bool, typer.Option("--diff", help="Also read the GitOps repository and show the manifest diff.")] = False) -> None:
    """Show what a release would build, push and change. Pure (no daemon, registry or repo) unless --diff."""
    from buildctl.commands import plan as plan_cmd

    cfg = _load(config, tag, registry, services, builder=builder)
    show = plan_cmd.plan_with_diff if diff else plan_cmd.plan
    render.render(show(cfg, pull=pull, no_cache=no_cache), as_json=json)


@app.command(epilog=epilog("doctor"))
def doctor(config: ConfigOpt = DEFAULT_CONFIG, tag: TagOpt = None, registry: RegistryOpt = None,
           builder: BuilderOpt = None, json: JsonOpt = False,
           dockerfile: Annotated[bool, typer.Option("--dockerfile", help="Instead: lint every service's Dockerfile for RUN steps under emulation (exit 1 on errors only).")] = False) -> None:
    """Check this machine: engine, buildx, image store, binfmt handlers, registry, git."""
    if dockerfile:
        from buildctl.commands.lint_dockerfiles import lint_dockerfiles as doctor_cmd
    else:
        from buildctl.commands.doctor import doctor as doctor_cmd

    result = doctor_cmd(_load(config, tag, registry, None, builder=builder))
    render.render(result, as_json=json)
    if not result.ok:
        raise typer.Exit(errors.EXIT_FAILED)


@app.command(epilog=epilog("binfmt"))
def binfmt(services: ServicesArg = None, config: ConfigOpt = DEFAULT_CONFIG, tag: TagOpt = None,
           registry: RegistryOpt = None, builder: BuilderOpt = None, json: JsonOpt = False,
           method: Annotated[Optional[str], typer.Option(help="host or image (overrides services.yaml).")] = None) -> None:
    """Register QEMU handlers for the non-native platforms (idempotent) and prove they run."""
    from buildctl.commands.setup import binfmt_step

    if method not in (None, "host", "image"):
        raise errors.UsageError(f"--method must be host or image, got {method!r}")
    render.render(binfmt_step(_load(config, tag, registry, services, builder=builder), method=method), as_json=json)


@app.command(epilog=epilog("builder"))
def builder(services: ServicesArg = None, config: ConfigOpt = DEFAULT_CONFIG, tag: TagOpt = None,
            registry: RegistryOpt = None, builder: BuilderOpt = None, json: JsonOpt = False,
            recreate_builder: RecreateOpt = False) -> None:
    """Select or create the configured buildx builder; check its nodes are up and cover every platform."""
    from buildctl.commands.setup import builder_step

    render.render(builder_step(_load(config, tag, registry, services, builder=builder,
                                     recreate_builder=recreate_builder)), as_json=json)


def _release(*, with_gitops: bool, services, config, tag, registry, builder, json, jobs, pull, no_cache, record,
             metadata_file, progress: ProgressMode, pin_digest=None, nightly: bool = False,
             recreate_builder: bool = False, retag: bool = False, sources: tuple[Path, ...] = (), rebuild: bool = False) -> None:
    with early_info.started():  # `docker info` runs beside the imports below (~0.2 s), and all after them
        from buildctl.config.builder_name import to_inspect_early

        # so does, on a fresh agent, the `buildx inspect` its builds wait for
        early_info.start_inspect(to_inspect_early(config, override=builder, recreate=recreate_builder))
        from buildctl.commands import release as release_cmd
        from buildctl.output import ci
        from buildctl.pipeline.metadata_file import write_metadata

        tag = release_cmd.nightly_tag() if nightly and tag is None else tag
        cfg = _load(config, tag, registry, services, builder=builder,
                    recreate_builder=recreate_builder).with_gitops(pin_digest=pin_digest)
        release_cmd.preload_tls(cfg)  # beside the input digests
        quiet = progress is ProgressMode.QUIET
        with display_for(progress, cfg) as display:
            if with_gitops:
                result = release_cmd.run(cfg, jobs=jobs, pull=pull, no_cache=no_cache, record_path=record,
                                         nightly=nightly, progress=display, retag=retag, sources=sources,
                                         rebuild=rebuild)
            else:
                result = release_cmd.build(cfg, jobs=jobs, pull=pull, no_cache=no_cache, record_path=record,
                                           progress=display, retag=retag, sources=sources, rebuild=rebuild)
        if metadata_file is not None:  # beside the record: the released images in buildx's shape
            write_metadata(metadata_file, result.record, run_dir=Path(result.outcome.run_dir))
        if json:
            render.emit_json(result.record)
        elif not quiet or not result.outcome.passed:
            out = render.console()
            render.release_table(result.outcome, out, result.signatures)
            if result.gitops is not None:
                render.human(result.gitops, out)
            out.print(f"release record: {result.record_path}")
        # Under Azure Pipelines / GitHub Actions: variables, outputs, summary. On stderr with --json,
        # so stdout stays one JSON document.
        ci.emit(result.record, environ=os.environ, stdout=sys.stderr if json else sys.stdout,
                record_path=result.record_path)
        if not result.outcome.passed:
            raise typer.Exit(errors.EXIT_FAILED)


@app.command(epilog=epilog("build"))
def build(services: ServicesArg = None, config: ConfigOpt = DEFAULT_CONFIG, tag: TagOpt = None,
          registry: RegistryOpt = None, builder: BuilderOpt = None, json: JsonOpt = False, jobs: JobsOpt = None,
          pull: PullOpt = False, no_cache: NoCacheOpt = False, record: RecordOut = None,
          metadata_file: MetadataOut = None, progress: ProgressOpt = ProgressMode.AUTO, quiet: QuietOpt = False,
          recreate_builder: RecreateOpt = False, retag: RetagOpt = False, rebuild: RebuildOpt = False,
          local: Annotated[bool, typer.Option("--local", help="Build for one platform and load into the local engine; no push.")] = False,
          platform: PlatformOpt = None, by_digest: ByDigestOpt = None, from_: FromOpt = None) -> None:
    """Build, push, verify and tag every service (no Git). The tag appears only if all pass."""
    mode = progress_mode(progress, quiet=quiet)
    if by_digest is not None and not local and not from_:  # one native agent's platform (README: Native agents)
        from buildctl.commands.agents import build_agent
        from buildctl.output.agents import show

        done = build_agent(_load(config, tag, registry, services, builder=builder, recreate_builder=recreate_builder),
                           platforms=platform_list(platform), file=by_digest, display=lambda c: display_for(mode, c),
                           jobs=jobs, pull=pull, no_cache=no_cache)
        show(done, as_json=json)
        raise typer.Exit(errors.EXIT_OK if done.agent.passed else errors.EXIT_FAILED)
    if local and (by_digest or from_) or (by_digest and from_):
        raise errors.UsageError("--local, --by-digest and --from do not go together: pass one")
    if local:
        from buildctl.commands.build_local import build_local

        render.render(build_local(_load(config, tag, registry, services, builder=builder),
                                  platforms=platform_list(platform)), as_json=json)
        return
    if platform is not None:
        raise errors.UsageError("--platform goes with --local or --by-digest; for releases set platforms: in services.yaml")
    _release(with_gitops=False, services=services, config=config, tag=tag, registry=registry, builder=builder,
             json=json, jobs=jobs, pull=pull, no_cache=no_cache, record=record, metadata_file=metadata_file,
             progress=mode, recreate_builder=recreate_builder, retag=retag, sources=tuple(from_ or ()), rebuild=rebuild)


@app.command(epilog=epilog("run"))
def run(services: ServicesArg = None, config: ConfigOpt = DEFAULT_CONFIG, tag: TagOpt = None,
        registry: RegistryOpt = None, builder: BuilderOpt = None, json: JsonOpt = False, jobs: JobsOpt = None,
        pull: PullOpt = False, no_cache: NoCacheOpt = False, record: RecordOut = None,
        metadata_file: MetadataOut = None, progress: ProgressOpt = ProgressMode.AUTO, quiet: QuietOpt = False,
        recreate_builder: RecreateOpt = False, retag: RetagOpt = False, rebuild: RebuildOpt = False,
        pin_digest: Annotated[Optional[bool], typer.Option("--pin-digest/--no-pin-digest", help="Write TAG@sha256:INDEX (default: services.yaml).")] = None,
        nightly: Annotated[bool, typer.Option("--nightly", help="Tag nightly-YYYYMMDD (unless --tag), rebuild (pulling) only what moved, base images included; no commit when nothing did (README: Nightly).")] = False,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the buildx commands, the tags and the manifest diff; run nothing.")] = False,
        from_: FromOpt = None) -> None:
    """The whole release: binfmt, builder, build, push, verify, tag, then one GitOps commit."""
    mode = progress_mode(progress, quiet=quiet)
    if dry_run:
        from buildctl.commands.plan import plan_with_diff
        from buildctl.commands.release import nightly_tag

        cfg = _load(config, tag or (nightly_tag() if nightly else None), registry, services, builder=builder)
        render.render(plan_with_diff(cfg, pull=pull, no_cache=no_cache), as_json=json)
        return
    _release(with_gitops=True, services=services, config=config, tag=tag, registry=registry, builder=builder,
             json=json, jobs=jobs, pull=pull, no_cache=no_cache, record=record, metadata_file=metadata_file,
             progress=mode, pin_digest=pin_digest, nightly=nightly, recreate_builder=recreate_builder, retag=retag,
             sources=tuple(from_ or ()), rebuild=rebuild)


@app.command(epilog=epilog("verify"))
def verify(images: Annotated[list[str], typer.Argument(metavar="IMAGE...", help="Image references, e.g. REG/REPO:TAG or REG/REPO@sha256:...")],
           config: ConfigOpt = DEFAULT_CONFIG, tag: TagOpt = None, registry: RegistryOpt = None, json: JsonOpt = False,
           platform: PlatformOpt = None,
           allow_extra: Annotated[bool, typer.Option("--allow-extra-platforms", help="Do not fail on platforms beyond the required ones.")] = False,
           deadline: Annotated[Optional[float], typer.Option("--deadline", min=0.1, callback=finite, help="Seconds one image's verification may take, every request included (default: verify.deadline_seconds, 120).")] = None,
           key: Annotated[Optional[Path], typer.Option("--key", help="Also check the cosign signature with this public key (README: Signed releases).")] = None,
           attestation: Annotated[bool, typer.Option("--attestation", help="Instead of verifying the bytes again, read back the verification attestation of each image's index (with --key: it must be signed by that key; README: Verification as evidence).")] = False,
           page_size: Annotated[Optional[str], typer.Option("--page-size", metavar="4k|16k|64k", help="Page size of the arm64 nodes' kernels: arm64 ELF files that cannot be mapped on it fail (default: verify.page_size, 4k).")] = None) -> None:
    """Verify images in a registry: platforms present, configs agree, the bytes are that architecture.
    --platform names the required platforms (default: the configured ones)."""
    from buildctl.commands.verify import credential_lookup, verify_references
    from buildctl.model import VerifyConfig

    checks = VerifyConfig()
    platforms = platform_list(platform)
    if not platforms:
        platforms, checks = configured_platforms(config, tag, registry)
    results = verify_references(images, platforms=platforms, exact=not allow_extra,
                                credentials=credential_lookup(config, registry), allow_foreign=checks.allow_foreign,
                                deadline_seconds=deadline if deadline is not None else checks.deadline_seconds,
                                public_key=key, page_size=page_size or checks.page_size, attestation=attestation)
    render.render(results, as_json=json)
    if not all(r.ok for r in results):
        raise typer.Exit(errors.EXIT_FAILED)


@app.command("update-manifests", epilog=epilog("update-manifests"))
def update_manifests_cmd(
    services: ServicesArg = None, config: ConfigOpt = DEFAULT_CONFIG, tag: TagOpt = None,
    registry: RegistryOpt = None, json: JsonOpt = False,
    gitops_repo: Annotated[Optional[str], typer.Option("--gitops-repo", help="GitOps repository URL or path (overrides services.yaml).")] = None,
    branch: Annotated[Optional[str], typer.Option("--branch", help="Branch to update (overrides services.yaml).")] = None,
    pin_digest: Annotated[Optional[bool], typer.Option("--pin-digest/--no-pin-digest", help="Write TAG@sha256:INDEX.")] = None,
    record: Annotated[Optional[Path], typer.Option("--record", help="Release record to take tags and digests from.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the diff; change nothing.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Report manifests that do not match the release; change nothing.")] = False,
    in_place: Annotated[bool, typer.Option("--in-place", help="Edit the local checkout given by --gitops-repo instead of a temporary clone.")] = False,
) -> None:
    """Point the GitOps manifests at a verified release: one commit, pushed safely."""
    from buildctl.commands import update_manifests as um

    if record is None:
        raise errors.UsageError("--record PATH is required: the release record of a verified build (buildctl build --record PATH)")
    cfg = _load(config, tag, registry, services).with_gitops(repo=gitops_repo, branch=branch, pin_digest=pin_digest)
    if check:
        drift = um.check_manifests(cfg, record=record, in_place=in_place)
        render.render(drift, as_json=json)
        if not drift.ok:
            raise typer.Exit(errors.EXIT_FAILED)
        return
    render.render(um.update_manifests(cfg, record=record, dry_run=dry_run, in_place=in_place), as_json=json)


@app.command(epilog=epilog("schema"))
def schema() -> None:
    """Print the services.yaml JSON Schema (the one buildctl validates with; for editors)."""
    import json as json_lib

    from buildctl.commands.schema import schema as schema_cmd

    typer.echo(json_lib.dumps(schema_cmd(), indent=2))


@app.command(epilog=epilog("completion"))
def completion(shell: Annotated[cli_completion.Shell, typer.Argument(help="The shell.", show_default=False)]) -> None:
    """Print the shell completion script for bash, zsh or fish."""
    typer.echo(cli_completion.script(shell))


def main(argv: list[str] | None = None) -> None:
    error_handler.run(app, argv)


@app.command(epilog=epilog("rollback"))
def rollback(tag: Annotated[str, typer.Argument(metavar="TAG", help="The release to deploy again (it must exist and pass verification).", show_default=False)],
             services: ServicesArg = None, config: ConfigOpt = DEFAULT_CONFIG, registry: RegistryOpt = None,
             json: JsonOpt = False, record: RecordOut = None,
             dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the manifest diff; change nothing.")] = False) -> None:
    """Deploy an older release again, on purpose: one GitOps commit "rollback to TAG", bypassing gitops.tag_order."""
    from buildctl.commands import rollback as rollback_cmd

    rollback_cmd.check_tag(tag)  # before services.yaml: the TAG argument's own message, not --tag's
    render.render(rollback_cmd.rollback(_load(config, tag, registry, services), tag, dry_run=dry_run, record_path=record),
                  as_json=json)
