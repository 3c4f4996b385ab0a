"""`buildctl build --local`: cross-build on a laptop and load into the local engine, no push.

Default platform: a foreign one (linux/arm64 on an amd64 laptop), since the native build is what
`docker build` already does. Run the result under emulation with
`docker run --rm --platform PLATFORM IMAGE` (Docker Desktop has binfmt built in; elsewhere
`buildctl binfmt` registers it).
"""

from __future__ import annotations

from pathlib import Path

from buildctl import platforms as platforms_of
from buildctl import workdir
from buildctl.engine import binfmt
from buildctl.engine import docker as engine
from buildctl.engine.results import LocalImage
from buildctl.model import Config
from buildctl.pipeline.plan import make_plan, new_run_id

LOCAL_PREFIX = "buildctl-local"


def build_local(config: Config, *, platforms: tuple[str, ...] = ()) -> tuple[LocalImage, ...]:
    """Each service for each of ``platforms`` (normal forms, platforms.parse_list; default: a
    foreign one), loaded into the local engine one platform at a time (buildx loads several only
    into the containerd image store, and one tag per platform says which is which)."""
    info = engine.engine_info()
    if not platforms:
        foreign = platforms_of.foreign(config.all_platforms(), info.native_platform)
        platforms = (foreign[0] if foreign else info.native_platform,)
    binfmt.ensure(platforms, native=info.native_platform, config=config.binfmt)
    run_id = new_run_id()
    run_dir = workdir.run_dir(config.root, run_id)
    images = []
    for service in make_plan(config, run_id=run_id).services:
        for platform in platforms:
            tag = f"{LOCAL_PREFIX}/{service.repository.split('/', 1)[1]}:{platform.replace('/', '-')}"
            several = f".{platform.replace('/', '-')}" if len(platforms) > 1 else ""
            log_file = Path(run_dir / f"{service.name}{several}.local.log")
            image_id = engine.build_local(service.build, platform=platform, tag=tag, log_file=log_file)
            images.append(LocalImage(service.name, platform, tag, image_id, str(log_file)))
    return tuple(images)
