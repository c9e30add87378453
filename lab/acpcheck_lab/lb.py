"""The lab's load balancer and what goes with it: a real haproxy holding the plan's
endpoint address in front of the control-plane nodes, a keepalived that already
holds a VIP, TLS "API servers" on the control-plane nodes (post-install), and
per-node firewall rules against other nodes (nftables in the node's namespace).

Scenario keys (see lab/README.md, "Load balancer")::

    loadBalancer:                 # haproxy in namespace acplab<name>-lb-haproxy, on the endpoint address
      endpoint: up                # down: nobody holds the endpoint address (the LB is off)
      ports: null                 # frontends; null: the plan's required LB ports
      unforwarded: [11781]        # required ports without a frontend (refused)
      missing: {11780: [cp2]}     # nodes left out of a port's backend
      balance: roundrobin         # source: every connection of one client goes to one node
      healthCheck: true           # TCP checks, every 200 ms, up after one success
      apiServers: null            # {certDays: 365, down: [cp2], sans: [], omitEndpoint: false}
    vip:                          # keepalived in namespace acplab<name>-lb-vip, VRRP master of the endpoint
      vrid: 51
    nodes:
      - name: cp3
        defects:
          dropFrom: [{from: w1, protocol: tcp, ports: [6443, 2379]}, {from: any, protocol: vrrp}]

Everything runs under the lab's keeper in namespaces named with the lab's prefix
(``acplab<name>-…``), so ``acpcheck lab down`` finds and removes it like every other
process of that lab.
"""

from __future__ import annotations

import datetime as dt
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acpcheck_lab.host import (
    LabError,
    disable_ipv6,
    ip_batch,
    listening,
    namespace_on_bridge,
    pid_alive,
    run,
)
from acpcheck_lab.layout import StatePaths
from acpcheck_lab.lbmodel import LabLoadBalancer

if TYPE_CHECKING:
    from acpcheck_lab.layout import LabNetwork
    from acpcheck_lab.node import NodeBuild
    from acpcheck_lab.scenario import Scenario

#: Host number of the VIP holder's own address (the endpoint is .10, nodes from .11).
VIP_HOLDER_HOST = 3
API_PORT = 6443
TLS_SERVER = Path(__file__).with_name("tlsapi.py")
#: The load balancer's namespaces are named like nodes' (the lab's prefix + this), so no node may be called so.
HAPROXY_NODE, VIP_NODE = "lb-haproxy", "lb-vip"
RESERVED_NODE_NAMES = (HAPROXY_NODE, VIP_NODE)


def required_tools(scenario: Scenario) -> list[str]:
    tools = []
    lb = scenario.load_balancer
    if lb is not None and lb.endpoint == "up":
        tools.append("haproxy")
    if scenario.vip is not None:
        tools.append("keepalived")
    if any(node.defects.drop_from for node in scenario.nodes):
        tools.append("nft")
    return tools


def check_names(scenario: Scenario) -> None:
    """LabError for a scenario whose LB keys name nodes it does not have."""
    names = {node.name for node in scenario.nodes}
    clash = sorted(names & set(RESERVED_NODE_NAMES))
    if clash:
        raise LabError(f"node name(s) {', '.join(clash)} are the load balancer's namespaces; choose others")
    named: list[str] = []
    lb = scenario.load_balancer
    if lb is not None:
        named += [name for nodes in lb.missing.values() for name in nodes]
        if lb.api_servers is not None:
            named += lb.api_servers.down
    named += [rule.from_ for node in scenario.nodes for rule in node.defects.drop_from if rule.from_ != "any"]
    unknown = sorted(set(named) - names)
    if unknown:
        raise LabError(f"the scenario's load balancer or firewall names unknown node(s): {', '.join(unknown)}")


def apply_firewalls(builds: list[NodeBuild]) -> None:
    """Add each node's ``dropFrom`` rules to its nftables ruleset, with the other nodes' addresses."""
    addresses = {build.spec.name: str(build.address) for build in builds}
    for build in builds:
        rules = build.spec.defects.drop_from
        if not rules:
            continue
        lines = []
        for rule in rules:
            source = "" if rule.from_ == "any" else f"ip saddr {addresses[rule.from_]} "
            # new connections only: the node's own connections to the other node still get their answers
            if rule.protocol == "vrrp":
                lines.append(f"\t\t{source}ip protocol vrrp drop")
            elif rule.ports:
                lines.append(
                    f"\t\t{source}{rule.protocol} dport {{ {', '.join(map(str, rule.ports))} }} ct state new drop"
                )
            else:
                lines.append(f"\t\t{source}meta l4proto {rule.protocol} ct state new drop")
        table = (
            (
                "table inet acplab_dropfrom {\n\tchain input {\n\t\ttype filter hook input priority filter; "
                "policy accept;\n"
            )
            + "\n".join(lines)
            + "\n\t}\n}\n"
        )
        build.nftables = (build.nftables or "") + table


@dataclass
class LabExtras:
    """What ``up`` adds for the scenario's load balancer, VIP holder and API servers."""

    paths: StatePaths
    direct: LabNetwork
    endpoint: str
    haproxy: str | None = None  # haproxy.cfg text
    frontends: list[int] = field(default_factory=list)
    keepalived: str | None = None
    api_nodes: dict[str, tuple[str, str]] = field(default_factory=dict)  # node -> (netns, address)
    api_version: str = ""

    @property
    def directory(self) -> Path:
        return self.paths.root / "lb"

    @property
    def haproxy_netns(self) -> str:
        return self.direct.lab.netns(HAPROXY_NODE)

    @property
    def vip_netns(self) -> str:
        return self.direct.lab.netns(VIP_NODE)

    @property
    def empty(self) -> bool:
        return self.haproxy is None and self.keepalived is None and not self.api_nodes

    # --- network ------------------------------------------------------------------

    def create_network(self) -> None:
        lines, links = [], []
        for netns, veth, present in (
            (self.haproxy_netns, f"{self.direct.lab.prefix}lbh", self.haproxy is not None),
            (self.vip_netns, f"{self.direct.lab.prefix}lbv", self.keepalived is not None),
        ):
            if present:
                lines += namespace_on_bridge(netns, veth, self.direct.bridge)
                links.append(veth)
        ip_batch(lines)
        disable_ipv6(links)

    # --- processes ------------------------------------------------------------------

    def requests(self, env: dict[str, str]) -> list[tuple[str, list[str], Path, dict[str, str]]]:
        requests = []
        prefix = self.direct.cidr.prefixlen
        if self.haproxy is not None:
            (self.directory / "haproxy.cfg").write_text(self.haproxy)
            script = self._script(
                "haproxy",
                [
                    "ip link set lo up",
                    "ip link set eth0 up",
                    f"ip address add {self.endpoint}/{prefix} dev eth0",
                    f"exec haproxy -db -f {shlex.quote(str(self.directory / 'haproxy.cfg'))}",
                ],
            )
            requests.append((self.haproxy_netns, ["/bin/sh", str(script)], self.directory / "haproxy.log", env))
        if self.keepalived is not None:
            (self.directory / "keepalived.conf").write_text(self.keepalived)
            holder = self.direct.cidr.network_address + VIP_HOLDER_HOST
            d = self.directory
            script = self._script(
                "keepalived",
                [
                    "ip link set lo up",
                    "ip link set eth0 up",
                    f"ip address add {holder}/{prefix} dev eth0",
                    (
                        f"exec keepalived -n -l -D -P -f {shlex.quote(str(d / 'keepalived.conf'))} -p "
                        f"{shlex.quote(str(d / 'keepalived-main.pid'))} "
                        f"-r {shlex.quote(str(d / 'keepalived-vrrp.pid'))}"
                    ),
                ],
            )
            requests.append((self.vip_netns, ["/bin/sh", str(script)], self.directory / "keepalived.log", env))
        for node, (netns, _address) in self.api_nodes.items():
            cert, key = self.directory / f"{node}.crt", self.directory / f"{node}.key"
            script = self._script(
                f"api-{node}",
                [f"exec python3 -I {shlex.quote(str(TLS_SERVER))} {cert} {key} {API_PORT} {self.api_version}"],
            )
            requests.append((netns, ["/bin/sh", str(script)], self.directory / f"api-{node}.log", env))
        return requests

    def _script(self, name: str, lines: list[str]) -> Path:
        script = self.directory / f"{name}.sh"
        pid_file = self.directory / f"{name}.pid"
        script.write_text(
            "#!/bin/sh\n# generated by `acpcheck lab up` (lab/acpcheck_lab/lb.py)\nset -eu\n"
            f"echo $$ > {shlex.quote(str(pid_file))}\n" + "\n".join(lines) + "\n"
        )
        return script

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until haproxy listens, keepalived holds the VIP and every API server listens."""
        waiting: dict[str, Any] = {}
        if self.haproxy is not None and self.frontends:
            waiting["haproxy"] = lambda: listening(self.directory / "haproxy.pid", self.frontends[0])
        if self.keepalived is not None:
            waiting["keepalived"] = lambda: (
                self.endpoint
                in run(["ip", "-n", self.vip_netns, "-4", "address", "show", "dev", "eth0"], check=False).stdout
            )
        for node in self.api_nodes:
            waiting[f"api-{node}"] = lambda node=node: listening(self.directory / f"api-{node}.pid", API_PORT)
        deadline = time.monotonic() + timeout
        while waiting:
            for name, ready in list(waiting.items()):
                if ready():
                    del waiting[name]
                elif pid_alive(self.directory / f"{name}.pid", verify=False) is False:
                    log = self.directory / f"{name}.log"
                    tail = log.read_text(errors="replace").strip().splitlines()[-6:] if log.exists() else []
                    raise LabError(f"the lab's {name} did not start:\n" + "\n".join("  " + line for line in tail))
            if time.monotonic() > deadline:
                raise LabError(f"not ready after {timeout:.0f} s: {', '.join(waiting)}")
            if waiting:
                time.sleep(0.05)


def prepare(
    scenario: Scenario, paths: StatePaths, networks: dict[str, LabNetwork], builds: list[NodeBuild], endpoint: str
) -> LabExtras:
    """Write the configurations and certificates the scenario's LB keys ask for."""
    from acpcheck.model.plan import load_plan

    extras = LabExtras(paths, networks["direct"], endpoint)
    lb, vip = scenario.load_balancer, scenario.vip
    if lb is None and vip is None:
        return extras
    extras.directory.mkdir(parents=True, exist_ok=True)
    control_plane = [build for build in builds if build.spec.role == "control-plane"]
    if lb is not None and lb.endpoint == "up":
        from acpcheck.model.ports import lb_ports

        plan = load_plan(paths.plan)
        wanted = lb.ports if lb.ports is not None else [port.port for port in lb_ports(plan)]
        extras.frontends = [port for port in wanted if port not in lb.unforwarded]
        extras.haproxy = haproxy_config(endpoint, extras.frontends, control_plane, lb)
    if lb is not None and lb.api_servers is not None:
        api = lb.api_servers
        plan = load_plan(paths.plan)
        names = [] if api.omit_endpoint else [endpoint]
        names += list(plan.spec.api_server.public_alternative_names) + api.sans
        write_certificates(
            extras.directory, [b for b in control_plane if b.spec.name not in api.down], names, api.cert_days
        )
        extras.api_nodes = {
            b.spec.name: (b.netns, str(b.address)) for b in control_plane if b.spec.name not in api.down
        }
        extras.api_version = api.version
    if vip is not None:
        extras.keepalived = keepalived_config(endpoint, extras.direct.cidr.prefixlen, vip.vrid)
    return extras


def haproxy_config(endpoint: str, ports: list[int], control_plane: list[NodeBuild], lb: LabLoadBalancer) -> str:
    check = " check inter 200ms fastinter 100ms downinter 200ms rise 1 fall 1" if lb.health_check else ""
    lines = [
        "# the lab's load balancer (generated by `acpcheck lab up`, lab/acpcheck_lab/lb.py)",
        "global",
        "  maxconn 4096",
        "defaults",
        "  mode tcp",
        "  timeout connect 1s",
        "  timeout client 30s",
        "  timeout server 30s",
        "  retries 1",
    ]
    for port in ports:
        lines += [
            f"frontend f{port}",
            f"  bind {endpoint}:{port}",
            f"  default_backend b{port}",
            f"backend b{port}",
            f"  balance {lb.balance}",
        ]
        for build in control_plane:
            if build.spec.name not in lb.missing.get(port, []):
                lines.append(f"  server {build.spec.name} {build.address}:{port}{check}")
    return "\n".join(lines) + "\n"


def keepalived_config(vip: str, prefix: int, vrid: int) -> str:
    return (
        "# a VRRP router that already holds the VIP (generated by `acpcheck lab up`, lab/acpcheck_lab/lb.py)\n"
        "global_defs {\n  router_id acplab_vip_holder\n  vrrp_version 3\n}\n"
        "# VRRPv3 allows sub-second adverts: master within a second instead of four\n"
        "vrrp_instance acplab {\n  state MASTER\n  interface eth0\n"
        f"  virtual_router_id {vrid}\n  priority 150\n  advert_int 0.2\n"
        f"  virtual_ipaddress {{\n    {vip}/{prefix} dev eth0\n  }}\n}}\n"
    )


def write_certificates(directory: Path, builds: list[NodeBuild], names: list[str], days: float) -> None:
    """A lab CA and one serving certificate per node (its own key, so each node's
    certificate differs), valid for ``names`` plus the node's address."""
    from acpcheck_lab.apiserver import issue

    now = dt.datetime.now(dt.UTC)
    ca_pem, _, ca, ca_key = issue(
        "acplab-kubernetes-ca", is_ca=True, days=3650, not_before=now - dt.timedelta(days=400)
    )
    (directory / "ca.crt").write_bytes(ca_pem)
    not_after = now + dt.timedelta(days=days)
    for build in builds:
        cert_pem, key_pem, _, _ = issue(
            "kube-apiserver",
            ca=(ca, ca_key),
            hosts=dict.fromkeys([*names, str(build.address)]),
            not_before=min(now, not_after) - dt.timedelta(days=1),
            not_after=not_after,
        )
        (directory / f"{build.spec.name}.crt").write_bytes(cert_pem)
        key_file = directory / f"{build.spec.name}.key"
        key_file.write_bytes(key_pem)
        key_file.chmod(0o600)
