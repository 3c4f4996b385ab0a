"""`buildctl plan`: resolve everything a release would do. Pure: no daemon, registry or repo."""

from __future__ import annotations

from buildctl.model import Config
from buildctl.plan import Plan, make_plan, new_run_id


def plan(config: Config, *, run_id: str | None = None) -> Plan:
    return make_plan(config, run_id=run_id or new_run_id())
