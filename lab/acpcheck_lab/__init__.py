"""The local lab: real sshd "nodes" in network namespaces, with real defects.

    python -m acpcheck_lab up [--scenario FILE|NAME | --nodes N] [--subnets DIRECT,HIDDEN] [--state DIR] [--name N]
    python -m acpcheck_lab status [--state DIR | --name N]
    python -m acpcheck_lab list
    python -m acpcheck_lab down [--state DIR | --name N] [--all] [--purge]

``up`` builds one network namespace per node of a scenario (``scenarios/*.yaml``), each
with its own hostname, root file system (an overlay over the host's), /proc and /sys
files and OpenSSH sshd; nodes on the *direct* network are reachable from this
machine, nodes on the *hidden* one only through a SOCKS5 proxy (microsocks, with a
username and password). It writes a ready-to-use acpcheck plan, ``<state>/plan.yaml``,
whose secrets are environment variables set by ``<state>/lab.env``. ``down`` removes
that lab again, also after a failed ``up``. Root only; several labs can be up at once,
each with its own name, state dir and subnets (``layout``, ``registry``).
lab/README.md (the distribution's, next to this package) has the details: networks, state dir,
defects, limits. The lab is its own distribution, acpcheck-lab, built on acpcheck's public API.

Modules: ``scenario`` (the YAML format), ``content`` (file texts), ``node`` (a node's
file view and init script), ``host`` (namespaces, links, processes, the keeper),
``layout`` (names, subnets and the addresses derived from them, state-dir paths),
``registry`` (the labs up on this machine),
``hostcheck`` (is a subnet already in use on this machine?), ``outputs`` (plan, ssh_config),
``info`` (a running lab: lab.json, lab.env), ``core`` (up/down/status), ``socks5`` (a tiny client),
``workers`` (lab nodes as remote pytest-xdist worker hosts), ``cli``; ``keeper.py`` and
``listener.py`` run as separate processes.
"""

from acpcheck_lab.cli import main
from acpcheck_lab.core import (
    DownReport,
    LabStatus,
    NodeStatus,
    down,
    status,
    up,
)
from acpcheck_lab.host import LabError
from acpcheck_lab.info import LabInfo, NodeInfo, ProxyInfo
from acpcheck_lab.layout import DEFAULT_STATE_DIR
from acpcheck_lab.scenario import Scenario, healthy_scenario, load_scenario

__all__ = [
    "DEFAULT_STATE_DIR",
    "DownReport",
    "LabError",
    "LabInfo",
    "LabStatus",
    "NodeInfo",
    "NodeStatus",
    "ProxyInfo",
    "Scenario",
    "down",
    "healthy_scenario",
    "load_scenario",
    "main",
    "status",
    "up",
]
