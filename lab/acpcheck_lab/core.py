"""``up``, ``down`` and ``status`` of the lab (see ``acpcheck_lab`` for the overview)."""

from __future__ import annotations

import concurrent.futures
import glob
import grp
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from acpcheck.errors import InputError, Problem
from acpcheck_lab import content, hostcheck, kernel_limits, outputs, registry, socks5
from acpcheck_lab import etcd as lab_etcd
from acpcheck_lab import hcplab as lab_hcp
from acpcheck_lab import lb as lab_lb
from acpcheck_lab import ociregistry as lab_oci
from acpcheck_lab.host import (
    Keeper,
    LabError,
    disable_ipv6,
    ip_batch,
    is_keeper,
    lab_etc_netns_dirs,
    lab_links,
    lab_namespaces,
    lab_processes,
    listening,
    namespace_on_bridge,
    pid_alive,
    require_root,
    run,
    terminate,
    wait_gone,
)
from acpcheck_lab.info import LabInfo, NodeInfo, ProxyInfo, write_env
from acpcheck_lab.layout import (
    DEFAULT_STATE_DIR,
    DEFAULT_SUBNETS,
    LABS_PREFIX,
    MARKER_ENV,
    NETWORK_NAMES,
    PROXY_PASSWORD_ENV,
    PROXY_PORT,
    PROXY_USER_ENV,
    ROUTE_METRIC,
    SUBNETS_ENV,
    LabNames,
    LabNetwork,
    LabSubnets,
    StatePaths,
)
from acpcheck_lab.node import HostBase, LabBuildError, NodeBuild, build_node, write_node
from acpcheck_lab.scenario import LAB_USER, Scenario, load_scenario

FIRST_LAB_UID = 4242
REQUIRED_TOOLS = ("ip", "unshare", "setsid", "mount", "ssh-keygen", "openssl", "/usr/sbin/sshd")


# ---------------------------------------------------------------------------
# up


def up(
    scenario: Scenario | str | Path = "demo",
    state_dir: Path | str = DEFAULT_STATE_DIR,
    *,
    name: str | None = None,
    ready_timeout: float | None = None,
    subnets: LabSubnets | str | None = None,
    host_sources: hostcheck.HostSources | None = None,
) -> LabInfo:
    """Build the lab for ``scenario`` (a Scenario, a file or a shipped name) and wait
    until every node's sshd and the proxy accept connections. On any failure whatever
    was built is torn down again before the error is raised.

    Other labs may be up on this machine (``registry``); this one gets its own name
    (``name``, default the first free number), state dir and subnets, and an InputError
    naming the lab in the way refuses a name, state dir or subnets another lab has.
    ``subnets``: ``DIRECT,HIDDEN`` or LabSubnets; default ACPCHECK_LAB_SUBNETS, else
    the first pair of DEFAULT_SUBNETS' sizes inside 198.18.0.0/15 that no lab and
    nothing on this machine uses. Chosen subnets are checked against the host
    (``hostcheck``, from ``host_sources``): one in use here is refused with
    SubnetsInUse (an InputError), as are subnets too small for the scenario."""
    started = time.monotonic()
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    names = LabNames.parse(name) if name is not None else None
    if subnets is None and os.environ.get(SUBNETS_ENV, "").strip():
        subnets = LabSubnets.chosen()
    if subnets is not None and not isinstance(subnets, LabSubnets):
        subnets = LabSubnets.chosen(subnets)
    counts = {network: sum(node.network == network for node in scenario.nodes) for network in NETWORK_NAMES}
    if subnets is not None:
        subnets.check_room(counts)
    require_root("up")
    paths = StatePaths(Path(state_dir).resolve())
    _preflight(scenario, paths)
    with registry.locked():
        entry = _claim(scenario, paths, names, subnets, counts, host_sources)
    try:
        info = _build(scenario, paths, entry.names, entry.subnets, ready_timeout)
    except BaseException:
        down(paths.root, purge=False, quiet=True)
        raise
    info.started_seconds = round(time.monotonic() - started, 2)
    paths.info.write_text(json.dumps(info.public_dict(), indent=2) + "\n")
    return info


def _preflight(scenario: Scenario, paths: StatePaths) -> None:
    """What can refuse an ``up`` before it writes or builds anything, other labs aside."""
    tools = list(REQUIRED_TOOLS)
    if scenario.needs_proxy:
        tools.append("microsocks")
    if any(node.defects.nftables_drop for node in scenario.nodes):
        tools.append("nft")
    tools += [tool for tool in lab_lb.required_tools(scenario) if tool not in tools]
    lab_lb.check_names(scenario)
    lab_hcp.check(scenario)  # hosted control planes: the hcp section's references
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing on this machine: {', '.join(missing)} (run scripts/setup-system.sh as root)")
    if re.search(r"[\s,:\\'\"]", str(paths.root)):
        raise LabError(
            f"{paths.root}: a state dir path must not contain spaces, quotes, ',' or ':' (they end up in mount options)"
        )
    if paths.root.exists() and any(paths.root.iterdir()) and not paths.marker.exists():
        raise LabError(f"{paths.root} exists and is not a lab state dir; choose another --state")


def _claim(
    scenario: Scenario,
    paths: StatePaths,
    names: LabNames | None,
    subnets: LabSubnets | None,
    counts: dict[str, int],
    host_sources: hostcheck.HostSources | None,
) -> registry.LabEntry:
    """Pick (or check) this lab's name and subnets against the labs up on this machine
    and record it in the registry; call with the registry locked. Every refusal names
    the lab in the way and its state dir."""
    registry.drop_stale()
    labs = registry.labs_up()
    for lab in labs:
        if lab.state_dir == paths.root:
            raise InputError(
                [
                    Problem(
                        "--state",
                        None,
                        "",
                        f"{lab} is up in this state dir; give another --state, or take it down first: "
                        f"acpcheck lab down --state {lab.state_dir}",
                    )
                ]
            )
    unrecorded = registry.unrecorded_objects(labs)
    if unrecorded:
        raise LabError(
            f"this machine has lab objects of no recorded lab ({', '.join(unrecorded[:4])}"
            f"{' …' if len(unrecorded) > 4 else ''}): a crashed lab or an older acpcheck's. Remove them with "
            "`acpcheck lab down --all` (that takes down every lab on this machine)"
        )
    taken = {lab.name: lab for lab in labs}
    if names is None:
        free = registry.free_name(set(taken))
        if free is None:
            raise LabError(f"{len(labs)} labs are up; every default name is taken (give one with --name)")
        names = LabNames(free)
    elif names.name in taken:
        lab = taken[names.name]
        raise InputError(
            [
                Problem(
                    "--name",
                    None,
                    "",
                    f"{lab} has this name; choose another --name, or take it down first: "
                    f"acpcheck lab down --state {lab.state_dir}",
                )
            ]
        )
    wanted = list(NETWORK_NAMES) if scenario.needs_proxy else ["direct"]
    lab_uses = [
        hostcheck.HostUse(lab.subnets.cidr(network), f"the {network} subnet {lab.subnets.cidr(network)} of {lab}")
        for lab in labs
        for network in NETWORK_NAMES
    ]
    if subnets is not None:
        hostcheck.check_host(subnets, wanted, host_sources, also=lab_uses)
    else:
        uses = hostcheck.host_uses(host_sources) + lab_uses
        subnets = hostcheck.free_subnets(uses, LabSubnets.default(), wanted)
        if subnets is None:
            raise LabError(
                f"no pair of subnets of the sizes of {DEFAULT_SUBNETS} is free in 198.18.0.0/15 ({len(labs)} labs are "
                "up: acpcheck lab list); give smaller ones with --subnets"
            )
        subnets.check_room(counts)
    entry = registry.LabEntry(
        names.name, paths.root, subnets, len(scenario.nodes), os.getpid(), registry.process_started(os.getpid()) or 0
    )
    registry.claim(entry)
    return entry


def _build(
    scenario: Scenario, paths: StatePaths, names: LabNames, subnets: LabSubnets, ready_timeout: float | None
) -> LabInfo:
    # Leftovers of an earlier lab in this state dir (keys are kept on purpose).
    _unmount_nodes(paths)
    for stale in (paths.nodes, paths.proxy_dir):
        shutil.rmtree(stale, ignore_errors=True)
    paths.root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o700)  # holds private keys and lab.env
    paths.marker.write_text("state directory of an acpcheck lab; `acpcheck lab down` removes it\n")
    # The nodes' files (about 45 per node, copied into each node's own disk when it
    # starts) on a tmpfs: on a journaling disk writing them took 12 s of a 1,000-node up.
    paths.nodes.mkdir(mode=0o700)
    run(["mount", "-t", "tmpfs", "-o", "mode=0700", NODES_MOUNT, str(paths.nodes)], timeout=10)

    _ensure_keys(paths, [node.name for node in scenario.nodes])
    password = secrets.token_urlsafe(15)  # the lab user's, new for every `up`
    host = _host_base(paths, password)
    networks = subnets.networks(names)
    counters = {"direct": 0, "hidden": 0}
    builds: list[NodeBuild] = []
    try:
        for node in scenario.nodes:
            network = networks[node.network]
            builds.append(build_node(node, network.node_address(counters[node.network]), network, host))
            counters[node.network] += 1
    except LabBuildError as error:
        raise LabError(str(error)) from None
    lab_lb.apply_firewalls(builds)
    parts = lab_etcd.LabParts(scenario, paths, builds, host)  # control-plane files, etcd, the test API server
    scenario = parts.scenario  # with the plan's kubeconfig when the scenario has a live cluster

    proxy = None
    if scenario.needs_proxy:
        proxy = ProxyInfo(
            str(networks["direct"].proxy_address), PROXY_PORT, "lab-" + secrets.token_hex(4), secrets.token_urlsafe(18)
        )
    info = LabInfo(
        state_dir=paths.root,
        scenario=scenario.name,
        nodes=[_node_info(build) for build in builds],
        proxy=proxy,
        client_key=paths.client_key,
        lab_user=LAB_USER,
        lab_password=password,
        subnets=subnets.as_dict(),
        name=names.name,
    )
    scenario, oci = lab_oci.prepare(scenario, paths, networks)  # the private registry: spec.registry of the plan
    # The plan is checked before anything starts: a bad `plan:` in a scenario fails fast.
    outputs.write_plan(paths, scenario, info)
    lab_hcp.prepare(scenario, paths, info, builds)  # hosted control planes: management cluster objects, plan
    _validate_plan(paths)
    write_env(paths, info)
    extras = lab_lb.prepare(scenario, paths, networks, builds, str(subnets.endpoint_address))

    for build in builds:
        node_dir = paths.node_dir(build.spec.name)
        node_dir.mkdir(parents=True)
        write_node(build, node_dir, paths.host_key(build.spec.name), host)

    # One ARP table and one backlog for every node of every lab: see kernel_limits.py.
    kernel_limits.raise_limits(sum(lab.nodes for lab in registry.labs_up() if lab.name != names.name) + len(builds))
    _create_network(builds, networks, with_hidden=proxy is not None)
    extras.create_network()
    if oci is not None:
        oci.create_network()
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        MARKER_ENV: str(paths.root),
    }
    requests = [_proxy_request(paths, proxy, networks, env)] if proxy is not None else []
    for build in builds:
        node_dir = paths.node_dir(build.spec.name)
        requests.append(
            (build.netns, ["unshare", "--uts", "--", "/bin/sh", str(node_dir / "init.sh")], node_dir / "sshd.log", env)
        )
    requests += extras.requests(env)
    requests += parts.processes(env)
    requests += oci.requests(env) if oci is not None else []
    requests += lab_hcp.processes(scenario, paths, builds, env)  # each Ready tenant's own test API server
    keeper = Keeper(paths.keeper_pid, env)
    try:
        keeper.launch(requests)
    finally:
        keeper.close()
    _wait_ready(paths, builds, proxy, ready_timeout if ready_timeout is not None else 20 + 0.2 * len(builds))
    extras.wait_ready()
    parts.ready()
    lab_hcp.wait_ready(scenario, paths, builds)
    if oci is not None:
        oci.wait_ready()
        oci.seed()
        oci.write_variants()

    host_keys = {b.spec.name: outputs.host_key_line(paths.host_key(b.spec.name).with_suffix(".pub")) for b in builds}
    outputs.write_ssh_files(paths, info, host_keys)
    return info


def _node_info(build: NodeBuild) -> NodeInfo:
    spec = build.spec
    defects = sorted(spec.defects.model_dump(exclude_defaults=True, by_alias=True))
    return NodeInfo(
        spec.name, spec.role, spec.network, str(build.address), spec.hostname, build.netns, spec.ssh_user, defects
    )


def _validate_plan(paths: StatePaths) -> None:
    from acpcheck.errors import InputError
    from acpcheck.model.plan import load_plan

    try:
        load_plan(paths.plan)
    except InputError as error:
        raise LabError(f"the scenario's plan is not a valid acpcheck plan:\n{error}") from None


def _ensure_keys(paths: StatePaths, nodes: list[str]) -> None:
    """The client key and one ed25519 host key per node, generated in parallel when
    missing. Kept across `down` so a node keeps its host key, like a real machine."""
    (paths.keys / "hosts").mkdir(parents=True, exist_ok=True)
    wanted = [(paths.client_key, "acpcheck-lab-client")] + [(paths.host_key(name), f"root@{name}") for name in nodes]
    procs = []
    for key, comment in wanted:
        if not key.exists() or not key.with_suffix(".pub").exists():
            key.unlink(missing_ok=True)
            key.with_suffix(".pub").unlink(missing_ok=True)
            procs.append(
                subprocess.Popen(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise LabError("ssh-keygen did not finish within 30 s") from None
        if proc.returncode:
            raise LabError(f"ssh-keygen failed: {err.decode().strip()}")


def _host_base(paths: StatePaths, password: str) -> HostBase:
    used_ids = {entry.pw_uid for entry in pwd.getpwall()} | {entry.gr_gid for entry in grp.getgrall()}
    try:
        shadow_gid = grp.getgrnam("shadow").gr_gid
    except KeyError:
        shadow_gid = 0
    dpkg_status: Path | None = None
    conflicts: set[str] = set()
    if Path("/var/lib/dpkg/status").exists():
        clean, conflicts = content.dpkg_without_conflicts(Path("/var/lib/dpkg/status").read_text(errors="replace"))
        dpkg_status = paths.root / "dpkg-status"  # rendered once, copied into each node's /var
        dpkg_status.write_text(clean)
    faketime = sorted(
        glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib*/faketime/libfaketime.so.1")
    )
    # The hash comes from openssl with the password on stdin (never on a command line).
    password_hash = run(["openssl", "passwd", "-6", "-stdin"], stdin=password, timeout=10).stdout.strip()
    return HostBase(
        passwd=_with_newline(Path("/etc/passwd").read_text()),
        group=_with_newline(Path("/etc/group").read_text()),
        shadow=_with_newline(Path("/etc/shadow").read_text()),
        shadow_gid=shadow_gid,
        dpkg_status=dpkg_status,
        dpkg_status_differs=bool(conflicts),
        lab_uid=next(candidate for candidate in range(FIRST_LAB_UID, 60000) if candidate not in used_ids),
        password_hash=password_hash,
        client_public_key=paths.client_key.with_suffix(".pub").read_text(),
        faketime_lib=faketime[0] if faketime else None,
        python="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable,
    )


def _with_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def _create_network(builds: list[NodeBuild], networks: dict[str, LabNetwork], with_hidden: bool) -> None:
    """Bridges, namespaces and veths, in two ``ip -batch`` runs for any number of nodes."""
    direct, hidden = networks["direct"], networks["hidden"]
    names = direct.lab
    bridges = [direct.bridge] + ([hidden.bridge] if with_hidden else [])
    ip_batch(f"link add {bridge} type bridge" for bridge in bridges)
    disable_ipv6(bridges)  # before they come up, so they never get a link-local address
    lines = [f"address add {direct.root_address}/{direct.cidr.prefixlen} dev {direct.bridge}"]
    lines += [f"link set {bridge} up" for bridge in bridges]
    if with_hidden:
        # Without this, a connection attempt to a hidden node would leave through the
        # machine's default route instead of failing here.
        lines.append(f"route add unreachable {hidden.cidr} metric {ROUTE_METRIC}")
        lines.append(f"netns add {names.proxy_netns}")
        for leg, network in (("eth0", direct), ("eth1", hidden)):
            veth = names.proxy_veth(network.name)
            lines.append(f"link add {veth} type veth peer name {leg} netns {names.proxy_netns}")
            lines.append(f"link set {veth} master {network.bridge} up")
    for index, build in enumerate(builds):
        lines += namespace_on_bridge(build.netns, names.veth(index), build.network.bridge)
    ip_batch(lines)
    disable_ipv6(link for link in lab_links(names.prefix) if link not in bridges)


def _proxy_request(
    paths: StatePaths, proxy: ProxyInfo, networks: dict[str, LabNetwork], env: dict[str, str]
) -> tuple[str, list[str], Path, dict[str, str]]:
    """microsocks in its own namespace with a leg on each network, listening on its
    direct-network address. Credentials reach it through the environment of the
    start script (microsocks also blanks them in its argv)."""
    direct, hidden = networks["direct"], networks["hidden"]
    paths.proxy_dir.mkdir(parents=True, exist_ok=True)
    script = paths.proxy_dir / "start.sh"
    script.write_text(
        "#!/bin/sh\n# the lab's SOCKS5 proxy (generated by `acpcheck lab up`)\nset -eu\n"
        f"echo $$ > {shlex.quote(str(paths.proxy_dir / 'proxy.pid'))}\n"
        "ip -batch - <<'EOF'\nlink set lo up\nlink set eth0 up\nlink set eth1 up\n"
        f"address add {direct.proxy_address}/{direct.cidr.prefixlen} dev eth0\n"
        f"address add {hidden.proxy_address}/{hidden.cidr.prefixlen} dev eth1\nEOF\n"
        "# the proxy relays connections; it never routes packets between the networks\n"
        "echo 0 > /proc/sys/net/ipv4/ip_forward\n"
        f'exec microsocks -i {proxy.host} -p {proxy.port} -u "${PROXY_USER_ENV}" -P "${PROXY_PASSWORD_ENV}"\n'
    )
    return (
        direct.lab.proxy_netns,
        ["/bin/sh", str(script)],
        paths.proxy_dir / "proxy.log",
        {**env, PROXY_USER_ENV: proxy.username, PROXY_PASSWORD_ENV: proxy.password},
    )


def _wait_ready(paths: StatePaths, builds: list[NodeBuild], proxy: ProxyInfo | None, timeout: float) -> None:
    """Until every sshd says it listens and the proxy accepts connections; fail as soon
    as one of them has died, with the end of its log."""
    deadline = time.monotonic() + timeout
    pending = {build.spec.name: paths.node_dir(build.spec.name) for build in builds}
    proxy_ready = proxy is None
    next_death_check = 0.0

    # Each round reads every pending node's log; the sshds starting meanwhile share
    # this machine's cores, so with many pending the rounds are spaced further apart.
    def pause() -> float:
        return min(0.25, 0.02 + 0.0002 * len(pending))

    while pending or not proxy_ready:
        check_deaths = time.monotonic() >= next_death_check
        for name, node_dir in list(pending.items()):
            log = node_dir / "sshd.log"
            text = log.read_text(errors="replace")
            if "Server listening on" in text:
                del pending[name]
            elif check_deaths and pid_alive(node_dir / "sshd.pid", verify=False) is False:
                raise LabError(f"node {name} did not start; end of {log}:\n{_tail(text)}")
        if check_deaths:
            next_death_check = time.monotonic() + 10 * pause()
        if not proxy_ready and proxy is not None:
            proxy_ready = listening(paths.proxy_dir / "proxy.pid", proxy.port)
            if not proxy_ready and pid_alive(paths.proxy_dir / "proxy.pid", verify=False) is False:
                raise LabError(
                    "the SOCKS5 proxy did not "
                    f"start:\n{_tail((paths.proxy_dir / 'proxy.log').read_text(errors='replace'))}"
                )
        if time.monotonic() > deadline:
            waiting = sorted(pending) + ([] if proxy_ready else ["proxy"])
            raise LabError(
                f"not ready after {timeout:.0f} s: {', '.join(waiting[:10])}{' …' if len(waiting) > 10 else ''}"
            )
        if pending or not proxy_ready:
            time.sleep(pause())


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join("  " + line for line in text.strip().splitlines()[-lines:]) or "  (empty)"


# ---------------------------------------------------------------------------
# down


@dataclass
class DownReport:
    processes: int
    namespaces: list[str]
    links: list[str]
    leftovers: list[str]  # what could not be removed (empty when all is clean)


def down(
    state_dir: Path | str = DEFAULT_STATE_DIR, *, purge: bool = False, quiet: bool = False, all_labs: bool = False
) -> DownReport:
    """Remove the lab of ``state_dir``: its processes (those carrying its state dir in
    their marker, or inside its namespaces or its nodes' mounts), namespaces, links,
    route and /etc/netns entries (found by its name prefix, so this also cleans up
    after a crashed or half-finished ``up``), then the state dir's contents. Other labs
    on this machine are left alone. With ``all_labs``: every lab's, found by the prefix
    all labs share, ``acplab``, and every recorded lab's state dir (for crashed labs
    whose state dir or registry entry is gone). The keys are kept unless ``purge``; a
    directory that is not a lab state dir is never touched. Idempotent."""
    require_root("down")
    paths = StatePaths(Path(state_dir).resolve())
    entry = registry.find(paths.root)
    if all_labs:
        prefix: str | None = LABS_PREFIX
        marked: Path | None = None  # every lab's marker
        state_dirs = [paths] + [StatePaths(lab.state_dir) for lab in registry.entries() if lab.state_dir != paths.root]
    else:
        names = _names_of(paths, entry)
        prefix, marked, state_dirs = names.prefix if names else None, paths.root, [paths]
    pid_files = [paths.keeper_pid for paths in state_dirs]
    for state in state_dirs:
        pid_files += list(state.nodes.glob("*/*.pid")) + list(state.proxy_dir.glob("*.pid"))
    processes = lab_processes(pid_files, prefix, marked)
    # The keeper last: it reaps the others as they end, then exits by itself.
    keepers = {pid for pid in processes if is_keeper(pid)}
    survivors = terminate(set(processes) - keepers)
    survivors += terminate(wait_gone(keepers, timeout=2.0))
    namespaces, links = (lab_namespaces(prefix), lab_links(prefix)) if prefix else ([], [])
    ip_batch((f"netns delete {name}" for name in namespaces), force=True)
    # veths first (each takes its peer with it), then the bridges
    if prefix:
        ip_batch((f"link delete {name}" for name in sorted(lab_links(prefix), key=_is_bridge)), force=True)
    routes = None if all_labs else _hidden_subnets(paths, entry)
    _delete_lab_routes(routes)
    for directory in lab_etc_netns_dirs(prefix) if prefix else []:
        shutil.rmtree(directory, ignore_errors=True)
    for state in state_dirs:
        _clear_state(state, purge)
    if all_labs:
        _unmount_all_nodes()
    for lab in registry.entries() if all_labs else [entry] if entry else []:
        registry.release(lab.name)
    if not registry.labs_up():  # the last lab on this machine: the kernel limits it raised go back
        kernel_limits.restore_limits()

    leftovers = [f"process {pid}" for pid in survivors]
    if prefix:
        leftovers += [f"namespace {name}" for name in lab_namespaces(prefix)]
        leftovers += [f"link {name}" for name in lab_links(prefix)]
        leftovers += [f"directory {path}" for path in lab_etc_netns_dirs(prefix)]
    leftovers += [f"the unreachable route for {route}" for route in lab_routes(routes)]
    leftovers += [f"the tmpfs on {state.nodes}" for state in state_dirs if os.path.ismount(state.nodes)]
    if leftovers and not quiet:
        raise LabError(f"could not remove: {', '.join(leftovers)}")
    return DownReport(len(processes), namespaces, links, leftovers)


def _names_of(paths: StatePaths, entry: registry.LabEntry | None) -> LabNames | None:
    """The names of the lab of a state dir: from its registry entry (written before
    anything is built), else from its lab.json; None when no lab is known there."""
    if entry is not None:
        return entry.names
    try:
        return LabNames.parse(str(json.loads(paths.info.read_text())["name"]))
    except (OSError, ValueError, KeyError, InputError):
        return None


def _hidden_subnets(paths: StatePaths, entry: registry.LabEntry | None) -> list[str]:
    """The hidden subnet of the lab of a state dir, as the key of its unreachable route."""
    if entry is not None:
        return [str(entry.subnets.hidden)]
    try:
        return [str(LabSubnets.from_dict(json.loads(paths.info.read_text())["subnets"]).hidden)]
    except (OSError, ValueError, KeyError):
        return []


def _is_bridge(link: str) -> bool:
    return link.endswith(tuple(f"-{network}" for network in NETWORK_NAMES))


def lab_routes(subnets: list[str] | None = None) -> list[str]:
    """Labs' unreachable routes (one per lab with a hidden network), found by their tag,
    the metric: those for ``subnets``, or every lab's (None)."""
    routes = json.loads(run(["ip", "-4", "-j", "route", "show", "type", "unreachable"], timeout=10).stdout or "[]")
    return [
        route["dst"]
        for route in routes
        if route.get("metric") == ROUTE_METRIC and "dst" in route and (subnets is None or route["dst"] in subnets)
    ]


def _delete_lab_routes(subnets: list[str] | None) -> None:
    ip_batch((f"route delete unreachable {dst} metric {ROUTE_METRIC}" for dst in lab_routes(subnets)), force=True)


#: The source name of the tmpfs under the state dir's nodes/. Not PREFIX: a host-side
#: mount named like the nodes' own would make every host process look like a lab one.
NODES_MOUNT = "acpcheck-lab-nodes"


def _unmount_nodes(paths: StatePaths) -> None:
    """Detach the nodes' tmpfs (lazily: a node's mount namespace may still hold it)."""
    if os.path.ismount(paths.nodes):
        run(["umount", "-l", str(paths.nodes)], timeout=10)


def _unmount_all_nodes() -> None:
    """Detach every lab's nodes' tmpfs, found by its source name (``down --all``: a lab's
    state dir may be unknown)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if " - " in line and line.split(" - ", 1)[1].split()[1:2] == [NODES_MOUNT]:
            run(["umount", "-l", fields[4]], timeout=10, check=False)


def _clear_state(paths: StatePaths, purge: bool) -> None:
    if not paths.marker.exists():
        return  # not ours (or already gone): never delete a directory we did not make
    _unmount_nodes(paths)
    if purge:
        shutil.rmtree(paths.root, ignore_errors=True)
        return
    for entry in paths.root.iterdir():
        if entry == paths.keys:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry != paths.marker:
            entry.unlink(missing_ok=True)


# ---------------------------------------------------------------------------
# status


@dataclass
class NodeStatus:
    name: str
    role: str
    network: str
    ipv4: str
    hostname: str
    sshd_running: bool
    reachable: bool
    route: str  # "direct" or "via proxy <url>"
    detail: str = ""  # why it is unreachable


@dataclass
class LabStatus:
    info: LabInfo
    nodes: list[NodeStatus]
    proxy_running: bool | None

    @property
    def healthy(self) -> bool:
        return all(node.reachable for node in self.nodes) and self.proxy_running is not False


def status(state_dir: Path | str = DEFAULT_STATE_DIR, timeout: float = 3.0) -> LabStatus:
    """Each node's sshd process and whether it answers with an SSH banner: directly,
    or through the proxy for hidden nodes (as a controller would reach it)."""
    require_root("status")  # to tell the lab's processes from others
    info = LabInfo.load(Path(state_dir).resolve())
    paths = info.paths

    def probe(node: NodeInfo) -> NodeStatus:
        running = bool(pid_alive(paths.node_dir(node.name) / "sshd.pid"))
        proxy = info.proxy if node.network == "hidden" else None
        route = f"via proxy {proxy.url}" if proxy else "direct"
        try:
            if proxy:
                sock = socks5.connect(
                    (proxy.host, proxy.port), (node.ipv4, 22), proxy.username, proxy.password, timeout
                )
            else:
                sock = socket.create_connection((node.ipv4, 22), timeout=timeout)
            with sock:
                sock.settimeout(timeout)
                banner = sock.recv(64)
            ok, detail = banner.startswith(b"SSH-2.0-"), "" if banner.startswith(b"SSH-2.0-") else "no SSH banner"
        except OSError as error:
            ok, detail = False, str(error) or type(error).__name__
        return NodeStatus(node.name, node.role, node.network, node.ipv4, node.hostname, running, ok, route, detail)

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        rows = list(pool.map(probe, info.nodes))
    proxy_running = bool(pid_alive(paths.proxy_dir / "proxy.pid")) if info.proxy else None
    return LabStatus(info, rows, proxy_running)
