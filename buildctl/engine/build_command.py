"""The one `docker buildx build` command line of a service: what engine.docker runs and what
`buildctl plan` prints are both this function's result, so a pasted command builds the same
thing on the same builder (issue #18: the printed one once left out ``--builder``).

Pure: no I/O. Cache specs go to buildx as the user wrote them (buildx parses the CSV itself).
"""

from __future__ import annotations

from buildctl.model import BuildSpec


def build_argv(spec: BuildSpec, *, local: tuple[str, str] | None = None) -> list[str]:
    """``docker buildx build ...`` for ``spec``: pushed under its staging tag with buildx's metadata
    file (the index digest), or with ``local=(platform, tag)`` loaded into the engine for that one
    platform (no push, no cache export, no attestations: `buildctl build --local`)."""
    opts = spec.options
    argv = ["docker", "buildx", "build", "--builder", spec.builder, "--progress", "plain",
            "--platform", local[0] if local else ",".join(spec.platforms), "--file", str(spec.dockerfile)]
    for key, value in spec.build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    if spec.source_date_epoch:
        argv += ["--build-arg", f"SOURCE_DATE_EPOCH={spec.source_date_epoch}"]
    for key, env in spec.secrets.items():
        argv += ["--secret", f"id={key},env={env}"]
    if spec.target:
        argv += ["--target", spec.target]
    for key, value in opts.labels.items():
        argv += ["--label", f"{key}={value}"]
    if opts.pull:
        argv.append("--pull")
    if opts.no_cache:
        argv.append("--no-cache")
    if local:
        return [*argv, "--tag", local[1], "--load", str(spec.context)]
    argv += [f"--provenance={str(opts.provenance).lower()}", f"--sbom={str(opts.sbom).lower()}"]
    for key, value in spec.annotations.items():
        argv += ["--annotation", f"{key}={value}"]
    for ref in opts.cache_from:
        argv += ["--cache-from", ref]
    for ref in opts.cache_to:
        argv += ["--cache-to", ref]
    if spec.by_digest:
        # No tag at all: the image is reachable only by the digest buildx writes to the metadata
        # file, so nothing can deploy one platform before the merge has put both in one index.
        stamp = ",rewrite-timestamp=true" if spec.rewrite_timestamp else ""
        argv += ["--output", f"type=image,name={spec.staging_ref.rsplit(':', 1)[0]},push-by-digest=true,"
                 f"push=true,oci-mediatypes=true{stamp}"]
        return [*argv, "--metadata-file", str(spec.metadata_file), str(spec.context)]
    argv += ["--tag", spec.staging_ref]
    if spec.rewrite_timestamp:
        # The image exporter clamps file timestamps to SOURCE_DATE_EPOCH (BuildKit >= 0.13): unchanged
        # sources give the same layers. The docker driver's exporter refuses it ("conflicts with unpack").
        argv += ["--output", "type=image,push=true,rewrite-timestamp=true,oci-mediatypes=true"]
    else:
        argv.append("--push")
    return [*argv, "--metadata-file", str(spec.metadata_file), str(spec.context)]
