"""Real `acpcheck run` processes whose reports the consumer tests open.

``every_status(base)`` runs the check pack ``every_status/check_every_status.py`` on
examples/workload-kube-ovn.yaml with replayed facts (w1 unreachable, the others
healthy), a live waiver and an expired one: every status, grouped ERRORs, the same
FAIL on several nodes and an expired waiver, in one run of about a second. The run
is made once per process (xdist worker) and shared; tests read, never change, it.

Loaded by path (``load()``), like tests/nodes/conftest.py's builders.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "workload-kube-ovn.yaml"
PACK = Path(__file__).resolve().parent / "every_status" / "check_every_status.py"
PROFILE = "name: report-tests\nextends: plan\ninclude: [ACP-NODE-9*]\n"
WAIVERS = (
    "waivers:\n"
    "  - {check: ACP-NET-913, target: plan, reason: single-node lab, owner: net-team@example.com, expires: "
    "2999-01-01}\n"
    "  - {check: ACP-NET-999, target: 'node:*', reason: old exception, owner: ops@example.com, expires: 2020-01-01}\n"
)
UNREACHABLE = "192.0.2.21:22 refused the connection"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses in it look their module up
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Run:
    process: subprocess.CompletedProcess[str]
    out: Path
    directory: Path

    def text(self, name: str) -> str:
        return (self.out / name).read_text(encoding="utf-8")


def acpcheck(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The acpcheck command in a real process, as a user runs it."""
    script = Path(sys.executable).with_name("acpcheck")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "acpcheck"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def every_status_inputs(directory: Path) -> dict[str, Path]:
    """The plan's facts (w1 unreachable), the profile and the waivers of the run, under ``directory``."""
    from acpcheck.facts.model import GatherFailure
    from acpcheck.facts.store import save_facts

    factories = load(ROOT / "tests" / "nodes" / "conftest.py", "report_runs_node_factories")
    facts = directory / "facts"
    if not facts.exists():
        healthy: dict[str, Any] = {name: factories.healthy_facts(name) for name in ("cp1", "cp2", "cp3", "w2")}
        save_facts(facts, {**healthy, "w1": GatherFailure("w1", "unreachable", UNREACHABLE)})
    (directory / "profile.yaml").write_text(PROFILE)
    (directory / "waivers.yaml").write_text(WAIVERS)
    return {"facts": facts, "profile": directory / "profile.yaml", "waivers": directory / "waivers.yaml"}


def run_every_status(directory: Path, name: str = "out", *extra: str, env: dict[str, str] | None = None) -> Run:
    """One `acpcheck run` of the every-status pack into ``directory / name``."""
    directory.mkdir(parents=True, exist_ok=True)
    inputs = every_status_inputs(directory)
    out = directory / name
    process = acpcheck(
        "run", "--plan", str(EXAMPLE), "--profile", str(inputs["profile"]), "--facts", str(inputs["facts"]),
        "--waivers", str(inputs["waivers"]), "--out", str(out), *extra, "--", str(PACK),
        env={"COLUMNS": "100", **(env or {})},
    )  # fmt: skip
    assert (out / "results.json").exists(), process.stdout + process.stderr
    return Run(process, out, directory)


@functools.cache
def every_status(base: Path) -> Run:
    """The shared run (once per process): pass ``tmp_path_factory.getbasetemp()``."""
    return run_every_status(base / "every-status")
