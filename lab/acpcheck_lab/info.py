"""What a running lab is: its nodes, its proxy and the secrets the plan names (``lab.json``
holds all but the secrets, ``lab.env`` the secrets). ``core`` makes it; ``outputs`` and the
lab's users read it. Kept apart from ``core`` so that the files ``up`` writes need none of
the lab's machinery."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from acpcheck_lab.host import LabError
from acpcheck_lab.layout import (
    PROXY_PASSWORD_ENV,
    PROXY_USER_ENV,
    SSH_PASSWORD_ENV,
    LabNames,
    LabSubnets,
    StatePaths,
)


@dataclass
class NodeInfo:
    name: str
    role: str
    network: str  # direct | hidden
    ipv4: str
    hostname: str
    netns: str
    ssh_user: str
    defects: list[str]  # the scenario's defect keys on this node


@dataclass
class ProxyInfo:
    host: str
    port: int
    username: str = field(repr=False)
    password: str = field(repr=False)

    @property
    def url(self) -> str:
        return f"socks5://{self.host}:{self.port}"


@dataclass
class LabInfo:
    """A running lab. Secrets are in ``lab.env`` and in the fields with repr=False."""

    state_dir: Path
    scenario: str
    nodes: list[NodeInfo]
    proxy: ProxyInfo | None
    client_key: Path
    lab_user: str
    lab_password: str = field(repr=False)
    started_seconds: float = 0.0
    #: {"direct": cidr, "hidden": cidr}: the subnets every address of this lab comes from.
    subnets: dict[str, str] = field(default_factory=lambda: LabSubnets.default().as_dict())
    #: The lab's name; its kernel objects are named with the prefix ``acplab<name>-``.
    name: str = "1"

    @property
    def paths(self) -> StatePaths:
        return StatePaths(self.state_dir)

    @property
    def lab_subnets(self) -> LabSubnets:
        return LabSubnets.from_dict(self.subnets)

    @property
    def names(self) -> LabNames:
        return LabNames(self.name)

    @property
    def plan_file(self) -> Path:
        return self.paths.plan

    @property
    def env_file(self) -> Path:
        return self.paths.env

    def node(self, name: str) -> NodeInfo:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no lab node {name!r}")

    def env(self) -> dict[str, str]:
        """The environment variables the lab's plan refers to."""
        values = {SSH_PASSWORD_ENV: self.lab_password}
        if self.proxy:
            values.update({PROXY_USER_ENV: self.proxy.username, PROXY_PASSWORD_ENV: self.proxy.password})
        return values

    def public_dict(self) -> dict:
        """lab.json: everything but the secrets."""
        data = asdict(self)
        data.pop("lab_password")
        data["proxy"] = {"host": self.proxy.host, "port": self.proxy.port} if self.proxy else None
        data["state_dir"], data["client_key"] = str(self.state_dir), str(self.client_key)
        return data

    @classmethod
    def load(cls, state_dir: Path | str) -> LabInfo:
        paths = StatePaths(Path(state_dir))
        try:
            data = json.loads(paths.info.read_text())
            secrets_ = read_env(paths)
        except FileNotFoundError:
            raise LabError(f"no lab is up with state dir {state_dir} (no {paths.info.name})") from None
        if "subnets" not in data or "name" not in data:
            raise LabError(
                f"{paths.info} was written by an older acpcheck (no subnets or name); run `acpcheck lab down --all` "
                "and `up` again"
            )
        proxy = data["proxy"]
        return cls(
            state_dir=Path(data["state_dir"]),
            scenario=data["scenario"],
            nodes=[NodeInfo(**node) for node in data["nodes"]],
            proxy=ProxyInfo(
                proxy["host"], proxy["port"], secrets_.get(PROXY_USER_ENV, ""), secrets_.get(PROXY_PASSWORD_ENV, "")
            )
            if proxy
            else None,
            client_key=Path(data["client_key"]),
            lab_user=data["lab_user"],
            lab_password=secrets_.get(SSH_PASSWORD_ENV, ""),
            started_seconds=data.get("started_seconds", 0.0),
            subnets=data["subnets"],
            name=data["name"],
        )


def write_env(paths: StatePaths, info: LabInfo) -> None:
    """``lab.env`` (mode 0600): the secrets the plan names, one ``NAME=value`` line each."""
    values = info.env()
    text = "# acpcheck lab secrets (generated per `up`); load with: set -a; . THIS_FILE; set +a\n"
    text += "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items())
    fd = os.open(paths.env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def read_env(paths: StatePaths) -> dict[str, str]:
    """The variables of ``lab.env``, as ``write_env`` wrote them."""
    values = {}
    for line in paths.env.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values
