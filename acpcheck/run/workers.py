"""What the xdist controller hands its workers, and the settings a worker makes of it.

A worker reads no input file again: the controller sends the plan's text (a fleet's
members and their plans: ``acpcheck.model.fleet.fleet_to_data``), the
profile and waivers it loaded, the run id, the report directory and, when the
evidence was gathered (or replayed) on the controller, the directory it is in.
xdist sends ``workerinput`` through execnet, so everything here is plain data
(strings, numbers, lists, dicts).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from acpcheck.model.check import Severity
from acpcheck.model.plan import plan_from_document
from acpcheck.model.profile import Profile
from acpcheck.model.result import utc_now
from acpcheck.model.waivers import Waiver, Waivers
from acpcheck.run.settings import Settings


def for_workers(settings: Settings) -> dict[str, Any]:
    """The controller's part of every worker's ``workerinput``."""
    given: dict[str, Any] = {"acp_run_id": settings.run_id, "acp_inputs": _inputs(settings)}
    if settings.replay_dir is not None:
        given["acp_evidence_dir"] = str(settings.replay_dir)
    return given


def _inputs(settings: Settings) -> dict[str, Any]:
    profile = settings.profile
    source = settings.plan._source
    fleet = None
    if settings.fleet is not None:
        from acpcheck.model.fleet import fleet_to_data

        fleet = fleet_to_data(settings.fleet)
    return {
        "fleet": fleet,
        "plan_path": settings.plan_path,
        "plan_text": source.text if source is not None and source.text is not None else "",
        "profile": {
            "name": profile.name,
            "description": profile.description,
            "include": list(profile.include),
            "exclude": list(profile.exclude),
            "fail_on": str(profile.fail_on),
            "overrides": {k: str(v) for k, v in profile.overrides.items()},
            "params": dict(profile.params),
            "source": profile.source,
        },
        "waivers": [w.as_dict() for w in settings.waivers.all],
        "today": settings.waivers.today.isoformat(),
        "out": str(settings.out_dir),
        "select": list(settings.select),
        # hosted control planes: the SSH hosts the controller added to the plan as node targets
        "ssh_hosts": settings.inputs.ssh_hosts.as_dict()
        if settings.inputs is not None and settings.inputs.ssh_hosts is not None
        else None,
    }


def worker_settings(workerinput: dict[str, Any]) -> Settings:
    """An xdist worker's settings, from what the controller read (``for_workers``)."""
    from acpcheck.matrix import known_acp_versions
    from acpcheck.yamlsource import parse_yaml

    given = workerinput["acp_inputs"]
    fleet = None
    if given.get("fleet") is not None:
        from acpcheck.model.fleet import fleet_from_data

        fleet = fleet_from_data(given["fleet"])
        first = fleet.global_member or fleet.members[0]
        plan = first.plan
    else:
        plan = plan_from_document(parse_yaml(given["plan_text"], given["plan_path"]), known_acp_versions())
        if given.get("ssh_hosts") is not None:  # the node targets the controller added (acpcheck.sources.sshhosts)
            from acpcheck.sources.sshhosts import SshHostInventory, with_ssh_hosts

            plan = with_ssh_hosts(plan, SshHostInventory.from_dict(given["ssh_hosts"]))
    profile = Profile(
        **{
            **given["profile"],
            "fail_on": Severity.parse(given["profile"]["fail_on"]),
            "overrides": {k: Severity.parse(v) for k, v in given["profile"]["overrides"].items()},
        }
    )
    waivers = Waivers([Waiver.model_validate(w) for w in given["waivers"]], dt.date.fromisoformat(given["today"]))
    replay = workerinput.get("acp_evidence_dir")
    return Settings(
        plan,
        given["plan_path"],
        profile,
        waivers,
        Path(given["out"]),
        workerinput["acp_run_id"],
        given["select"],
        utc_now(),
        Path(replay) if replay else None,
        fleet=fleet,
    )
