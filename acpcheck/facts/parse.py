"""From the probe's raw JSON to ``NodeFacts``: all interpretation lives here.

``probe.sh`` only reads files and runs commands; each read becomes a section
``{"out", "err", "rc"}`` (see the header of probe.sh). This module says what the
probe asks about (``probe_queries()``; ``probe_script()`` puts the lists in
front of the script), and how every section becomes a field, so the rules are
unit-testable on recorded outputs.

Conventions:

- An absent file or an inapplicable command gives None (or an empty collection):
  "the node has no such thing". A read that *failed* (command error, timeout,
  permission) adds ``"<field>: <what failed>"`` to ``probe_errors``, where
  ``<field>`` is the NodeFacts field it leaves unknown, so a check can tell
  "no listeners" from "ss failed" (``field_errors(facts, "listeners")``).
- Firewall (``firewall_services``), decided per mechanism:
  ``firewalld`` — its systemd unit is active;
  ``ufw`` — ``ENABLED=yes`` in /etc/ufw/ufw.conf and, under systemd, the unit is
  active (Ubuntu's ufw.service is "active" even when ufw is disabled);
  ``nftables`` — ``nft list ruleset`` has a base chain of ``type filter`` with at
  least one rule or a ``policy drop``; when the ruleset could not be read, the
  systemd unit's state;
  ``iptables`` — ``iptables -S`` has a rule (``-A``) or a DROP policy (``-P … DROP``).
  A mechanism we could not observe is left out of the dict.
"""

from __future__ import annotations

import functools
import json
import math
import posixpath
import re
import shlex
from dataclasses import dataclass
from importlib import resources

from acpcheck.facts.records import Address, DiskSpace, Listener, Mount

# ---------------------------------------------------------------------------
# What the probe asks about. The node checks declare what they read in the OS
# matrix (acpcheck.matrix.os.probe_queries: conflicting packages of every distro,
# binaries, leftover paths, partitions); the probe asks exactly that, plus the
# few things below, so the probe and the checks share one list.

SYSCTLS: tuple[str, ...] = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.all.arp_accept",
    "net.bridge.bridge-nf-call-iptables",
)
#: lvm (lvm2: §1.3 S2, TopoLVM/Rook) and sudo (U1 evidence) on top of the checks' S1 list.
EXTRA_BINARIES: tuple[str, ...] = ("lvm", "sudo")
#: /tmp's free space, next to the partitions of §3.2.
EXTRA_DISK_PATHS: tuple[str, ...] = ("/tmp",)


@dataclass(frozen=True)
class ProbeQueries:
    packages: tuple[str, ...]  # exact package names, asked of dpkg-query or rpm
    binaries: tuple[str, ...]  # looked up with command -v
    paths: tuple[str, ...]  # tested with test -e (as root)
    disks: tuple[str, ...]  # df -Pk of each (or of its nearest existing parent)


@functools.cache
def probe_queries() -> ProbeQueries:
    from acpcheck.matrix.os import probe_queries as checks_need

    need = checks_need()
    return ProbeQueries(
        packages=tuple(need["packages"]),
        binaries=tuple(dict.fromkeys([*need["binaries"], *EXTRA_BINARIES])),
        paths=tuple(need["paths"]),
        disks=tuple(dict.fromkeys([*need["disks"], *EXTRA_DISK_PATHS])),
    )


PROBE_VERSION = 1
#: Seconds the probe allows each command (through coreutils ``timeout``).
COMMAND_LIMIT_SECONDS = 5


def sysctl_path(name: str) -> str:
    return "/proc/sys/" + name.replace(".", "/")


def probe_preamble(command_limit: int = COMMAND_LIMIT_SECONDS) -> str:
    """The variable assignments probe.sh expects in front of it (see its header)."""
    asked = probe_queries()
    variables = {
        "SYSCTLS": " ".join(f"{name}={sysctl_path(name)}" for name in SYSCTLS),
        "PACKAGES": " ".join(asked.packages),
        "BINARIES": " ".join(asked.binaries),
        "PATHS_ASKED": " ".join(asked.paths),
        "DISK_PATHS": " ".join(asked.disks),
        "LIMIT": str(command_limit),
    }
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in variables.items())


def probe_text() -> str:
    """probe.sh as shipped (acpcheck.facts.model.probe_script adds the declared sections)."""
    return resources.files("acpcheck.facts").joinpath("probe.sh").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# The raw document


class ProbeOutputError(ValueError):
    """The probe ran but its output cannot be used (GatherFailure kind "probe")."""


@dataclass(frozen=True)
class Section:
    out: str
    err: str
    rc: int

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if line.strip()]


@dataclass(frozen=True)
class RawProbe:
    clock: str  # the node's `date +%s.%N`
    sections: dict[str, Section]

    def get(self, name: str) -> Section | None:
        return self.sections.get(name)

    def text(self, name: str) -> str | None:
        """The content of a file section that was read, else None."""
        section = self.sections.get(name)
        return section.out if section is not None and section.ok else None


def decode_probe_output(stdout: str, stderr: str = "", exit_status: int = 0) -> RawProbe:
    """Parse the probe's stdout; raise ProbeOutputError with the reason otherwise."""
    try:
        # Skip anything a chatty login shell printed first (a .bashrc that echoes);
        # strict=False: a control character an exotic awk left unescaped must not cost the node.
        document, _ = json.JSONDecoder(strict=False).raw_decode(stdout, max(0, stdout.find('{"probe":')))
    except ValueError:
        reason = _first_line(stderr) or (f"{len(stdout)} bytes that are not JSON" if stdout else "no output")
        raise ProbeOutputError(f"the probe's output is unusable (exit {exit_status}): {reason}") from None
    if (
        not isinstance(document, dict)
        or document.get("probe") != PROBE_VERSION
        or not isinstance(document.get("sections"), dict)
    ):
        raise ProbeOutputError(f"the probe's output is not an acpcheck probe v{PROBE_VERSION} document")
    sections: dict[str, Section] = {}
    for name, value in document["sections"].items():
        if not isinstance(value, dict):
            raise ProbeOutputError(f"probe section {name!r} is malformed")
        sections[name] = Section(
            out=str(value.get("out", "")), err=str(value.get("err", "")), rc=int(value.get("rc", 0))
        )
    return RawProbe(clock=str(document.get("clock", "")), sections=sections)


# ---------------------------------------------------------------------------
# Failures of a read, as probe_errors entries

#: What each command section ran, for messages.
_COMMANDS = {
    "uname_m": "uname -m", "cgroup_fs": "stat -fc %T /sys/fs/cgroup", "hostname": "hostname",
    "ip_addr": "ip -o addr show", "ip_route": "ip route show", "ip6_route": "ip -6 route show",
    "ss_tcp": "ss -Htlnp", "ss_udp": "ss -Hulnp", "sshd_t": "sshd -T", "nft_ruleset": "nft list ruleset",
    "iptables_rules": "iptables -S", "systemctl_is_active": "systemctl is-active",
    "default_tasks_max": "systemctl show --property=DefaultTasksMax",
    "timedatectl": "timedatectl show -p Timezone --value",
    "packages": "the package query", "snaps": "snap list", "usr_local_bin": "ls -A /usr/local/bin",
    "existing_paths": "test -e", "id_user": "id -un", "id_uid": "id -u",
}  # fmt: skip


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def describe_failure(name: str, section: Section) -> str:
    """``sshd -T failed (exit 1): sudo: a password is required``."""
    what = _COMMANDS.get(name) or (f"df -Pk {name[3:]}" if name.startswith("df:") else name)
    reason = {124: "timed out", 126: "not executable", 127: "command not found"}.get(section.rc)
    detail = _first_line(section.err)
    if reason:
        return f"{what} {reason}" + (f": {detail}" if detail and section.rc != 124 else "")
    return f"{what} failed (exit {section.rc})" + (f": {detail}" if detail else "")


class _Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(f"{field}: {message}")

    def command(self, raw: RawProbe, name: str, field: str) -> Section | None:
        """The section when it ran and succeeded; a failure is recorded against ``field``."""
        section = raw.get(name)
        if section is None:
            return None
        if not section.ok:
            self.add(field, describe_failure(name, section))
            return None
        return section

    def file(self, raw: RawProbe, name: str, field: str) -> str | None:
        """A file's content; None when absent; an unreadable file is recorded."""
        section = raw.get(name)
        if section is None or section.rc == 1:
            return None
        if not section.ok:
            self.add(field, f"{name}: {_first_line(section.err) or 'not readable'}")
            return None
        return section.out


# ---------------------------------------------------------------------------
# Field parsers: small, pure, one per source


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def unescape_octal(text: str) -> str:
    """/proc/mounts and /proc/swaps write space as \\040 (and tab, newline, backslash likewise)."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m[1], 8)), text)


def detailed_version(
    os_id: str | None, version_id: str | None, centos_release: str | None, kylin_productinfo: str | None
) -> str | None:
    """VERSION_ID with what os-release leaves out: CentOS 7 says "7" (the minor is in
    /etc/centos-release: "7.9.2009"), Kylin V10 says "V10" for every service pack
    (the pack is in /etc/.productinfo: "V10 SP3")."""
    if os_id == "centos" and centos_release:
        match = re.search(r"release\s+(\d+\.\d+(?:\.\d+)?)", centos_release)
        if match:
            return match.group(1)
    if os_id == "kylin" and kylin_productinfo:
        match = re.search(r"\b(V\d+)\b.*?\(?\b(SP\d+)\b", kylin_productinfo, re.IGNORECASE | re.DOTALL)
        if match:
            return f"{match.group(1).upper()} {match.group(2).upper()}"
    return version_id


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5): shell-style KEY=value lines, values possibly quoted."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            value = " ".join(shlex.split(value))
        except ValueError:  # unbalanced quote: keep what is there
            value = value.strip().strip("\"'")
        values[key.strip()] = value
    return values


def _colon_fields(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            pairs.append((key.strip(), value.strip()))
    return pairs


#: ARM (implementer, part) -> the name lscpu (util-linux) gives it. Part 0xd01 is
#: Kunpeng 920 only from HiSilicon (implementer 0x48); other vendors reuse numbers.
ARM_CPU_NAMES = {("0x48", "0xd01"): "Kunpeng-920"}


def parse_cpuinfo(text: str) -> tuple[int | None, str | None]:
    """(number of ``processor`` entries, model). The model is ``model name`` (x86,
    some ARM kernels), else the ARM implementer/part by its lscpu name when known
    (``Kunpeng-920``), else ``implementer 0x.. part 0x..``."""
    fields = _colon_fields(text)
    count = sum(1 for key, _ in fields if key == "processor")
    model = next((value for key, value in fields if key == "model name" and value), None)
    if model is None:
        implementer = next((value for key, value in fields if key == "CPU implementer" and value), None)
        part = next((value for key, value in fields if key == "CPU part" and value), None)
        if part is not None:
            model = ARM_CPU_NAMES.get(
                (str(implementer).lower(), part.lower()), f"implementer {implementer} part {part}"
            )
    return (count or None), model


def parse_meminfo_total(text: str) -> int | None:
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match[1]) if match else None


def parse_swaps(text: str) -> tuple[str, ...]:
    lines = text.splitlines()[1:]  # header: Filename Type Size Used Priority
    return tuple(unescape_octal(line.split()[0]) for line in lines if line.strip())


def parse_modules(text: str) -> frozenset[str]:
    return frozenset(line.split()[0] for line in text.splitlines() if line.strip())


def parse_selinux(enforce: str | None, config: str | None) -> str | None:
    """The live mode from selinuxfs when mounted, else the configured SELINUX=."""
    if enforce is not None:
        return {"1": "enforcing", "0": "permissive"}.get(enforce.strip(), enforce.strip() or None)
    if config is not None:
        for line in config.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key.strip() == "SELINUX":
                return value.strip().strip("\"'").lower() or None
    return None


def parse_apparmor(text: str | None) -> bool | None:
    if text is None:
        return None
    return {"Y": True, "N": False}.get(text.strip().upper())


def nft_filters(ruleset: str) -> bool:
    """Whether an ``nft list ruleset`` filters: a base chain of type filter with a rule or ``policy drop``."""
    in_chain = False
    filter_base_chain = False
    for raw_line in ruleset.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_chain:
            if line.startswith("chain ") and line.endswith("{"):
                in_chain, filter_base_chain = True, False
            continue
        if line == "}":
            in_chain = False
        elif line.startswith("type "):
            filter_base_chain = line.split()[1] == "filter"
            if filter_base_chain and re.search(r"\bpolicy drop\b", line):
                return True
        elif line.startswith(("comment ", "policy ", "devices ")):
            if filter_base_chain and line.startswith("policy drop"):
                return True
        elif filter_base_chain:
            return True  # any other line in a filter base chain is a rule
    return False


def iptables_filters(rules: str) -> bool:
    """Whether ``iptables -S`` shows a rule or a DROP policy (beyond ``-P X ACCEPT`` defaults)."""
    for line in rules.splitlines():
        words = line.split()
        if words[:1] == ["-A"] or (words[:1] == ["-P"] and words[2:3] == ["DROP"]):
            return True
    return False


def parse_sshd_t(text: str) -> dict[str, str]:
    """``sshd -T``: ``key value`` lines; repeated keys (hostkey, listenaddress …) are joined by newlines."""
    config: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if not key:
            continue
        key = key.lower()
        config[key] = f"{config[key]}\n{value.strip()}" if key in config else value.strip()
    return config


def last_assignment(texts: list[str], key: str, section: str | None = None) -> str | None:
    """The value of the last ``key=value`` line across ``texts`` (in order), optionally only
    inside ``[section]``; ``#``/``;`` lines are comments. An empty value counts as unset (None):
    for systemd it resets the setting to a built-in default, which we do not guess."""
    value: str | None = None
    for text in texts:
        current = None
        for line in text.splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                current = line[1:-1]
                continue
            name, sep, setting = line.partition("=")
            if sep and name.strip() == key and (section is None or current == section):
                value = setting.strip().strip("\"'") or None
    return value


_PREFIX_BY_FAMILY = {4: 32, 6: 128}


def parse_ip_addr(text: str) -> tuple[Address, ...]:
    """``ip -o addr show``: ``2: eth0    inet 192.0.2.11/24 brd … scope global eth0\\ …``."""
    addresses = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 4 or words[2] not in ("inet", "inet6"):
            continue
        family = 4 if words[2] == "inet" else 6
        interface = words[1].split("@", 1)[0]
        local = words[3]
        if "/" not in local and "peer" in words:  # point-to-point: the prefix is on the peer
            peer = words[words.index("peer") + 1] if words.index("peer") + 1 < len(words) else ""
            local = local + ("/" + peer.split("/", 1)[1] if "/" in peer else "")
        address, _, prefix = local.partition("/")
        try:
            prefix_length = int(prefix) if prefix else _PREFIX_BY_FAMILY[family]
        except ValueError:
            continue
        addresses.append(Address(interface=interface, family=family, address=address, prefix_length=prefix_length))
    return tuple(addresses)


_SS_PROCESS = re.compile(r'users:\(\("([^"]+)"')


def parse_ss(text: str, protocol: str) -> tuple[Listener, ...]:
    """``ss -H{t,u}lnp``: ``LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))``."""
    listeners = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 5 or words[0] in ("State", "Netid"):  # a header from an ss without -H
            continue
        address, sep, port = words[3].rpartition(":")
        if not sep or not port.isdigit():
            continue
        address = address.removeprefix("[").removesuffix("]").split("%", 1)[0]  # [::], 127.0.0.53%lo
        process = _SS_PROCESS.search(line)
        listeners.append(
            Listener(protocol=protocol, address=address, port=int(port), process=process[1] if process else "")
        )
    return tuple(listeners)


def parse_dpkg_query(text: str, asked: tuple[str, ...]) -> frozenset[str]:
    """``dpkg-query -W -f='${Package}\\t${Status}\\n'``: installed when the status ends in "installed"."""
    installed = set()
    for line in text.splitlines():
        name, _, status = line.partition("\t")
        if name in asked and status.split()[-1:] == ["installed"]:
            installed.add(name)
    return frozenset(installed)


def parse_rpm_q(text: str, asked: tuple[str, ...]) -> frozenset[str]:
    """``rpm -q --qf '%{NAME}\\n'``: a name per installed package, "package X is not installed" otherwise."""
    return frozenset(line.strip() for line in text.splitlines() if line.strip() in asked)


def parse_snap_list(text: str) -> frozenset[str]:
    lines = text.splitlines()
    if lines and lines[0].split()[:1] == ["Name"]:
        lines = lines[1:]
    return frozenset(line.split()[0] for line in lines if line.strip())


def parse_binaries(text: str) -> dict[str, str | None]:
    found: dict[str, str | None] = dict.fromkeys(probe_queries().binaries)
    for line in text.splitlines():
        name, _, path = line.partition("\t")
        if name:
            found[name] = path.strip() or None
    return found


def parse_mounts(text: str) -> tuple[Mount, ...]:
    mounts = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 4:
            mounts.append(
                Mount(
                    source=unescape_octal(words[0]),
                    target=unescape_octal(words[1]),
                    fstype=words[2],
                    options=tuple(words[3].split(",")),
                )
            )
    return tuple(mounts)


def parse_df(path: str, text: str) -> DiskSpace | None:
    """``df -Pk``: a header, then ``source size used available capacity mountpoint``."""
    for line in text.splitlines()[1:]:
        words = line.split(None, 5)
        if len(words) == 6 and words[1].isdigit() and words[3].isdigit():
            return DiskSpace(path=path, mount=words[5], size_kib=int(words[1]), available_kib=int(words[3]))
    return None


def zone_from_localtime_link(target: str) -> str | None:
    """``/usr/share/zoneinfo/Asia/Shanghai`` (or ``../usr/share/zoneinfo/…``) -> ``Asia/Shanghai``."""
    _, sep, zone = target.strip().partition("zoneinfo/")
    return zone if sep and zone else None


def parse_clock(text: str) -> float:
    """``date +%s.%N``; busybox prints a literal ``N``, so fall back to whole seconds. NaN when unreadable."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        seconds = text.split(".", 1)[0]
        return float(seconds) if seconds.isdigit() else float("nan")


# ---------------------------------------------------------------------------
# Assembly

_FIREWALL_UNITS = ("firewalld", "ufw", "nftables", "systemd-resolved")  # the order probe.sh asks in


def _unit_states(raw: RawProbe, errors: _Errors) -> dict[str, str]:
    """systemctl is-active, one state per unit; it exits non-zero when any unit is inactive."""
    section = raw.get("systemctl_is_active")
    if section is None:
        return {}
    states = section.lines()
    if len(states) != len(_FIREWALL_UNITS):
        errors.add("firewall_services", describe_failure("systemctl_is_active", section))
        return {}
    return dict(zip(_FIREWALL_UNITS, states, strict=True))


def _active(state: bool) -> str:
    return "active" if state else "inactive"


def _firewall(raw: RawProbe, systemd: bool, units: dict[str, str], errors: _Errors) -> dict[str, str]:
    services: dict[str, str] = {}
    if "firewalld" in units:
        services["firewalld"] = _active(units["firewalld"] == "active")
    ufw_conf = errors.file(raw, "ufw_conf", "firewall_services")
    if ufw_conf is not None:
        enabled = last_assignment([ufw_conf], "ENABLED") == "yes"
        unit_running = units.get("ufw") == "active" if systemd and "ufw" in units else True
        services["ufw"] = _active(enabled and unit_running)
    elif "ufw" in units:
        services["ufw"] = _active(units["ufw"] == "active")
    ruleset = errors.command(raw, "nft_ruleset", "firewall_services")
    if ruleset is not None:
        services["nftables"] = _active(nft_filters(ruleset.out))
    elif "nftables" in units:
        services["nftables"] = _active(units["nftables"] == "active")
    rules = errors.command(raw, "iptables_rules", "firewall_services")
    if rules is not None:
        services["iptables"] = _active(iptables_filters(rules.out))
    return services


def _packages(raw: RawProbe, manager: str | None, errors: _Errors) -> frozenset[str]:
    section = raw.get("packages")
    if manager is None:
        errors.add("installed_packages", "neither dpkg-query nor rpm was found")
        return frozenset()
    if section is None:
        return frozenset()
    if manager == "dpkg":
        # Exit 1 with "no packages found matching X" just means X was never installed.
        unexpected = [
            line for line in section.err.splitlines() if line.strip() and "no packages found matching" not in line
        ]
        if section.rc not in (0, 1) or unexpected:
            errors.add(
                "installed_packages",
                describe_failure("packages", Section(section.out, "\n".join(unexpected), section.rc)),
            )
        return parse_dpkg_query(section.out, probe_queries().packages)
    # rpm -q exits with the number of packages not installed; only no output is a failure.
    if section.rc >= 124 or not section.out.strip():
        errors.add("installed_packages", describe_failure("packages", section))
    return parse_rpm_q(section.out, probe_queries().packages)


def _default_tasks_max(raw: RawProbe, systemd: bool, errors: _Errors) -> str | None:
    if systemd:
        section = errors.command(raw, "default_tasks_max", "default_tasks_max")
        if section is None:
            return None
        return last_assignment([section.out], "DefaultTasksMax")
    files = [raw.text("system_conf") or ""] + [
        s.out for name, s in raw.sections.items() if name.startswith("system_conf_d:") and s.ok
    ]
    return last_assignment(files, "DefaultTasksMax", section="Manager")


def _timezone(raw: RawProbe, systemd: bool, errors: _Errors) -> str | None:
    """timedatectl under systemd; else (or when it fails) /etc/timezone; else the /etc/localtime link."""
    if systemd:
        section = raw.get("timedatectl")
        if section is not None and section.ok and section.out.strip():
            return section.out.strip()
    zone_file = raw.text("timezone_file")
    if zone_file is not None:
        zone = next(
            (line.strip() for line in zone_file.splitlines() if line.strip() and not line.startswith("#")), None
        )
        if zone:
            return zone
    link = raw.get("localtime_link")
    if link is not None and link.ok:
        return zone_from_localtime_link(link.out)
    if systemd and raw.get("timedatectl") is not None:
        errors.add("timezone", describe_failure("timedatectl", raw.sections["timedatectl"]))
    return None


def _value(section: Section | None) -> str | None:
    """A one-line command output, stripped; None when the command did not succeed."""
    return (section.out.strip() or None) if section is not None else None


# ---------------------------------------------------------------------------
# Field readers: one per NodeFacts field, named ``read_<field>``. The field's
# declaration in acpcheck/facts/model.py names its reader; ``assemble`` there calls
# them in field order, so a failure lands in probe_errors in field order.


class Reading:
    """One node's raw probe document while its fields are read: the sections, the
    failures recorded so far, and what several fields share (parsed once)."""

    def __init__(self, raw: RawProbe) -> None:
        self.raw = raw
        self.errors = _Errors()

    def file(self, name: str, field: str) -> str | None:
        return self.errors.file(self.raw, name, field)

    def command(self, name: str, field: str) -> Section | None:
        return self.errors.command(self.raw, name, field)

    @functools.cached_property
    def systemd(self) -> bool:
        return (self.raw.text("systemd") or "").strip() == "yes"

    @functools.cached_property
    def os_release(self) -> dict[str, str]:
        return parse_os_release(self.file("os_release", "os_id") or "")

    @functools.cached_property
    def cpuinfo(self) -> tuple[int | None, str | None]:
        text = self.file("cpuinfo", "cpu_count")
        return parse_cpuinfo(text) if text is not None else (None, None)

    @functools.cached_property
    def units(self) -> dict[str, str]:
        return _unit_states(self.raw, self.errors)

    @functools.cached_property
    def package_manager(self) -> str | None:
        manager = self.raw.text("package_manager")
        return manager.strip() if manager else None

    @functools.cached_property
    def is_root(self) -> bool | None:
        uid = self.command("id_uid", "is_root")
        return uid.out.strip() == "0" if uid is not None else None


def read_clock_epoch(r: Reading) -> float:
    clock = parse_clock(r.raw.clock)
    if math.isnan(clock):
        r.errors.add("clock_epoch", f"date +%s.%N printed {r.raw.clock!r}")
    return clock


def read_os_id(r: Reading) -> str | None:
    return r.os_release.get("ID")


def read_os_version_id(r: Reading) -> str | None:
    return detailed_version(
        r.os_release.get("ID"),
        r.os_release.get("VERSION_ID"),
        r.raw.text("centos_release"),
        r.raw.text("kylin_productinfo"),
    )


def read_os_pretty_name(r: Reading) -> str | None:
    return r.os_release.get("PRETTY_NAME")


def read_kernel_release(r: Reading) -> str | None:
    kernel = r.file("osrelease", "kernel_release")
    return kernel.strip() if kernel else None


def read_architecture(r: Reading) -> str | None:
    return _value(r.command("uname_m", "architecture"))


def read_cpu_count(r: Reading) -> int | None:
    return r.cpuinfo[0]


def read_cpu_model(r: Reading) -> str | None:
    return r.cpuinfo[1]


def read_memory_kib(r: Reading) -> int | None:
    meminfo = r.file("meminfo", "memory_kib")
    return parse_meminfo_total(meminfo) if meminfo is not None else None


def read_swaps(r: Reading) -> tuple[str, ...]:
    swaps = r.file("swaps", "swaps")
    return parse_swaps(swaps) if swaps is not None else ()


def read_kernel_cmdline(r: Reading) -> str | None:
    cmdline = r.file("cmdline", "kernel_cmdline")
    return cmdline.strip() if cmdline is not None else None


def read_modules(r: Reading) -> frozenset[str]:
    # Loaded modules are in /proc/modules; built-in ones (and all of them on a
    # kernel without loadable-module support) only as /sys/module/<name>.
    proc_modules = r.raw.get("modules")
    sys_module = r.raw.get("sys_module")
    modules: frozenset[str] | None = None
    if proc_modules is not None and proc_modules.rc == 0:
        modules = parse_modules(proc_modules.out)
    if sys_module is not None and sys_module.rc == 0:
        modules = (modules or frozenset()) | frozenset(sys_module.out.split())
    if modules is None:
        # An empty set would read as "nothing loaded"; say why it is unknown.
        r.errors.add("modules", "neither /proc/modules nor /sys/module could be read")
    return modules or frozenset()


def read_sysctls(r: Reading) -> dict[str, str]:
    sysctls = {}
    for name in SYSCTLS:
        value = r.file(f"sysctl:{name}", "sysctls")
        if value is not None:
            sysctls[name] = " ".join(value.split())
    return sysctls


def read_selinux(r: Reading) -> str | None:
    return parse_selinux(r.file("selinux_enforce", "selinux"), r.file("selinux_config", "selinux"))


def read_apparmor_enabled(r: Reading) -> bool | None:
    return parse_apparmor(r.file("apparmor_enabled", "apparmor_enabled"))


def read_firewall_services(r: Reading) -> dict[str, str]:
    return _firewall(r.raw, r.systemd, r.units, r.errors)


def read_sshd(r: Reading) -> dict[str, str]:
    sshd = r.command("sshd_t", "sshd")
    return parse_sshd_t(sshd.out) if sshd is not None else {}


def read_default_tasks_max(r: Reading) -> str | None:
    return _default_tasks_max(r.raw, r.systemd, r.errors)


def read_hostname(r: Reading) -> str | None:
    return _value(r.command("hostname", "hostname"))


def read_etc_hosts(r: Reading) -> str | None:
    return r.file("etc_hosts", "etc_hosts")


def read_resolv_conf(r: Reading) -> str | None:
    return r.file("resolv_conf", "resolv_conf")


def read_systemd_resolved_active(r: Reading) -> bool | None:
    if r.systemd:
        state = r.units.get("systemd-resolved")
        return None if state is None else state == "active"
    link = r.raw.get("resolv_conf_link")
    if link is None or not link.ok:
        return False  # not a symlink (or absent): nothing points into systemd-resolved
    target = posixpath.normpath(posixpath.join("/etc", link.out.strip()))
    return target.startswith("/run/systemd/resolve/")


def read_addresses(r: Reading) -> tuple[Address, ...]:
    ip_addr = r.command("ip_addr", "addresses")
    return parse_ip_addr(ip_addr.out) if ip_addr is not None else ()


def read_routes(r: Reading) -> tuple[str, ...]:
    sections = [r.command(name, "routes") for name in ("ip_route", "ip6_route")]
    return tuple(line.strip() for section in sections if section is not None for line in section.lines())


def read_listeners(r: Reading) -> tuple[Listener, ...]:
    sections = [(r.command(name, "listeners"), protocol) for name, protocol in (("ss_tcp", "tcp"), ("ss_udp", "udp"))]
    return tuple(
        item for section, protocol in sections if section is not None for item in parse_ss(section.out, protocol)
    )


def read_package_manager(r: Reading) -> str | None:
    return r.package_manager


def read_installed_packages(r: Reading) -> frozenset[str]:
    return _packages(r.raw, r.package_manager, r.errors)


def read_snaps(r: Reading) -> frozenset[str]:
    snaps = r.command("snaps", "snaps")
    return parse_snap_list(snaps.out) if snaps is not None else frozenset()


def read_binaries(r: Reading) -> dict[str, str | None]:
    binaries = r.raw.get("binaries")
    return parse_binaries(binaries.out) if binaries is not None else {}


def read_usr_local_bin(r: Reading) -> frozenset[str]:
    section = r.raw.get("usr_local_bin")
    if section is None:
        return frozenset()
    if not section.ok and "No such file" not in section.err:
        r.errors.add("usr_local_bin", describe_failure("usr_local_bin", section))
    return frozenset(section.lines()) if section.ok else frozenset()


def read_existing_paths(r: Reading) -> frozenset[str]:
    existing = r.command("existing_paths", "existing_paths")
    return frozenset(line.strip() for line in existing.lines()) if existing is not None else frozenset()


def read_mounts(r: Reading) -> tuple[Mount, ...]:
    mounts = r.file("mounts", "mounts")
    return parse_mounts(mounts) if mounts is not None else ()


def read_disks(r: Reading) -> tuple[DiskSpace, ...]:
    disks = []
    for path in probe_queries().disks:
        section = r.command(f"df:{path}", "disks")
        space = parse_df(path, section.out) if section is not None else None
        if space is not None:
            disks.append(space)
    return tuple(disks)


def read_timezone(r: Reading) -> str | None:
    return _timezone(r.raw, r.systemd, r.errors)


def read_cgroup_fs(r: Reading) -> str | None:
    return _value(r.command("cgroup_fs", "cgroup_fs"))


def read_user(r: Reading) -> str | None:
    return _value(r.command("id_user", "user"))


def read_is_root(r: Reading) -> bool | None:
    return r.is_root


def read_passwordless_sudo(r: Reading) -> bool | None:
    sudo = r.raw.get("sudo_n")
    return None if r.is_root or sudo is None else sudo.ok
