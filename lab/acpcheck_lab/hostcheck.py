"""Is a lab subnet already in use on this machine? ``up`` asks before it builds anything.

While a lab is up, its subnets belong to the lab: an address inside them leaves through
the lab's bridge (direct) or hits its ``unreachable`` route (hidden). So ``up`` refuses
subnets that overlap anything this machine uses or talks to:

- its interface addresses (``ip -4 -j addr``) and routes (``ip -4 -j route show table
  all``; the default route itself is no conflict, a more specific one is);
- ``/etc/hosts`` entries and ``/etc/resolv.conf`` nameservers;
- the package indexes it is configured for, resolved to addresses: pip (``index-url``,
  ``extra-index-url``, ``find-links`` in pip's configuration files and ``PIP_*``
  variables; PyPI when no index is set), apt (``/etc/apt/sources.list``,
  ``sources.list.d/*.list`` and ``*.sources``) and npm (``registry`` in the npmrc files
  and ``NPM_CONFIG_REGISTRY``; registry.npmjs.org when none is set).

Every source is a field of ``HostSources`` with the real location as its default, so a
test can feed its own files. Labs' interfaces and tagged routes are left out: ``up``
knows every lab's subnets from the registry of labs (``registry``) and passes them in as
uses (``also``), named by lab and state dir. Names are resolved with getaddrinfo, all at once,
each bounded by ``HostSources.resolve_timeout``: a name that does not resolve in time is
skipped (it cannot be reached through the lab either).

Functions: ``host_uses`` (what this machine uses, with where each item came from),
``find_conflicts`` (those inside the lab's subnets), ``check_host`` (raises
``SubnetsInUse``, an InputError: exit code 4), ``free_subnets`` (a pair that would do).
"""

from __future__ import annotations

import configparser
import glob
import ipaddress
import json
import os
import pwd
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from acpcheck.errors import InputError, Problem
from acpcheck_lab.host import LabError
from acpcheck_lab.layout import (
    LABS_PREFIX,
    NETWORK_NAMES,
    ROUTE_METRIC,
    SUBNETS_ENV,
    LabSubnets,
)

#: The tools' own defaults, used when nothing is configured (pip's PyPI and its file host, npm's registry).
PIP_DEFAULT_INDEX = "https://pypi.org/simple"
PIP_DEFAULT_FILE_HOST = "files.pythonhosted.org"
NPM_DEFAULT_REGISTRY = "https://registry.npmjs.org/"

Resolver = Callable[[Iterable[str], float], dict[str, list[str]]]
IpReader = Callable[[str], list[dict[str, Any]]]


@dataclass(frozen=True)
class HostSources:
    """Where ``host_uses`` looks. ``None`` means the real place, found from ``environ``."""

    hosts_file: Path = Path("/etc/hosts")
    resolv_conf: Path = Path("/etc/resolv.conf")
    pip_configs: tuple[Path, ...] | None = None
    apt_sources: tuple[Path, ...] | None = None
    npm_configs: tuple[Path, ...] | None = None
    environ: Mapping[str, str] | None = None  # None: os.environ
    #: ``ip -4 -j <what>`` ("addr" or "route"), parsed; None runs ip; a function that
    #: returns [] leaves interfaces and routes out.
    ip: IpReader | None = None
    #: names -> IPv4 addresses; None: getaddrinfo, in parallel, ``resolve_timeout`` each.
    resolver: Resolver | None = None
    resolve_timeout: float = 2.0

    @property
    def env(self) -> Mapping[str, str]:
        return os.environ if self.environ is None else self.environ


@dataclass(frozen=True)
class HostUse:
    """Something this machine uses: a network (an address is a /32) and what it is."""

    network: ipaddress.IPv4Network
    what: str  # e.g. "192.0.2.80 (pypi.org, from pip index https://pypi.org/simple, pip's default)"

    @property
    def is_address(self) -> bool:
        return self.network.prefixlen == 32


@dataclass(frozen=True)
class Conflict:
    use: HostUse
    subnet_name: str  # direct | hidden
    subnet: ipaddress.IPv4Network

    def __str__(self) -> str:
        verb = "lies in" if self.use.is_address else "overlaps"
        return f"{self.use.what} {verb} the lab's {self.subnet_name} subnet {self.subnet}"


class SubnetsInUse(InputError):
    """The lab's subnets clash with this machine (bad input: choose other subnets)."""

    def __init__(self, conflicts: list[Conflict], suggestion: LabSubnets | None):
        hint = f"choose others with --subnets or {SUBNETS_ENV}"
        if suggestion is not None:
            hint += f" (free on this machine: --subnets {suggestion})"
        lines = [str(conflict) for conflict in conflicts]
        if len(lines) == 1:
            lines[0] += f"; {hint}"
        else:
            lines.append(hint)
        super().__init__([Problem("lab subnets", None, "", line) for line in lines])
        self.conflicts = conflicts
        self.args = ("\n".join(lines),)

    def __str__(self) -> str:
        return str(self.args[0])


# ---------------------------------------------------------------------------
# the checks


def check_host(
    subnets: LabSubnets,
    names: Iterable[str] = NETWORK_NAMES,
    sources: HostSources | None = None,
    also: Iterable[HostUse] = (),
) -> list[HostUse]:
    """Raise SubnetsInUse if a subnet among ``names`` is in use here (or by ``also``,
    the other labs' subnets); else return what was inspected."""
    uses = host_uses(sources) + list(also)
    wanted = list(names)
    conflicts = find_conflicts(subnets, uses, wanted)
    if conflicts:
        raise SubnetsInUse(conflicts, free_subnets(uses, subnets, wanted))
    return uses


def find_conflicts(
    subnets: LabSubnets, uses: Iterable[HostUse], names: Iterable[str] = NETWORK_NAMES
) -> list[Conflict]:
    wanted = [(name, subnets.cidr(name)) for name in names]
    return [Conflict(use, name, cidr) for use in uses for name, cidr in wanted if use.network.overlaps(cidr)]


def free_subnets(uses: list[HostUse], like: LabSubnets, names: Iterable[str] = NETWORK_NAMES) -> LabSubnets | None:
    """A pair of subnets of ``like``'s sizes inside 198.18.0.0/15 (the benchmarking range)
    that nothing in ``uses`` overlaps; None if there is none."""
    names = list(names)
    direct_range, hidden_range = ipaddress.IPv4Network("198.18.0.0/16"), ipaddress.IPv4Network("198.19.0.0/16")
    if like.direct.prefixlen < 16 or like.hidden.prefixlen < 16:
        return None
    directs = direct_range.subnets(new_prefix=like.direct.prefixlen)
    hiddens = hidden_range.subnets(new_prefix=like.hidden.prefixlen)
    for direct, hidden in zip(directs, hiddens, strict=False):
        candidate = LabSubnets(direct, hidden)
        if not find_conflicts(candidate, uses, names):
            return candidate
    return None


def host_uses(sources: HostSources | None = None) -> list[HostUse]:
    """Everything this machine uses, each with where it came from (see the module doc)."""
    sources = sources or HostSources()
    uses = interface_uses(sources.ip or _run_ip)
    uses += hosts_file_uses(sources.hosts_file)
    uses += resolv_conf_uses(sources.resolv_conf)
    indexes = package_indexes(sources)
    resolver = sources.resolver or resolve_names
    addresses = resolver(sorted({index.host for index in indexes}), sources.resolve_timeout)
    for index in indexes:
        for address in addresses.get(index.host, []):
            uses.append(HostUse(ipaddress.IPv4Network(address), f"{address} ({index.host}, from {index.origin})"))
    return uses


# ---------------------------------------------------------------------------
# interfaces, routes, /etc/hosts, resolv.conf


def _run_ip(what: str) -> list[dict[str, Any]]:
    command = ["ip", "-4", "-j", what] + (["show", "table", "all"] if what == "route" else [])
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True)
        return list(json.loads(result.stdout or "[]"))
    except FileNotFoundError:
        return []  # no iproute2: up's tool check says so
    except (subprocess.SubprocessError, ValueError) as error:
        raise LabError(f"cannot read this machine's {what}s with `{' '.join(command)}`: {error}") from None


def interface_uses(ip: IpReader) -> list[HostUse]:
    uses = []
    for link in ip("addr"):
        name = link.get("ifname", "?")
        if name.startswith(LABS_PREFIX):
            continue  # a lab's bridge: up knows the labs' subnets from the registry
        for info in link.get("addr_info", []):
            if info.get("family") != "inet" or "local" not in info:
                continue
            interface = ipaddress.IPv4Interface(f"{info['local']}/{info.get('prefixlen', 32)}")
            uses.append(HostUse(interface.network, f"address {interface} on {name} (from `ip addr`)"))
    for route in ip("route"):
        dst = route.get("dst", "")
        if dst in ("", "default") or str(route.get("dev", "")).startswith(LABS_PREFIX):
            continue
        if route.get("type") == "unreachable" and route.get("metric") == ROUTE_METRIC:
            continue  # a lab's tagged route (as for bridges)
        try:
            network = ipaddress.IPv4Network(dst, strict=False)
        except ValueError:
            continue
        if network.prefixlen == 0:
            continue  # a default route in other words: not a conflict
        words = [str(route[key]) for key in ("type",) if key in route] + [dst]
        words += [f"{key} {route[key]}" for key in ("gateway", "dev", "table") if key in route]
        uses.append(HostUse(network, f"route {' '.join(words)} (from `ip route`)"))
    return uses


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, words) of a file, comments (#) removed; [] if unreadable."""
    try:
        return _lines_of(path.read_text(errors="replace"))
    except OSError:
        return []


def _lines_of(text: str) -> list[tuple[int, list[str]]]:
    return [(number, line.split("#", 1)[0].split()) for number, line in enumerate(text.splitlines(), 1)]


def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


def hosts_file_uses(path: Path) -> list[HostUse]:
    uses = []
    for number, words in _lines(path):
        address = _ipv4(words[0]) if words else None
        if address is not None:
            names = " ".join(words[1:]) or "no name"
            uses.append(HostUse(ipaddress.IPv4Network(address), f"{address} ({names}, from {path} line {number})"))
    return uses


def resolv_conf_uses(path: Path) -> list[HostUse]:
    uses = []
    for number, words in _lines(path):
        address = _ipv4(words[1]) if len(words) > 1 and words[0] == "nameserver" else None
        if address is not None:
            uses.append(HostUse(ipaddress.IPv4Network(address), f"{address} (nameserver, from {path} line {number})"))
    return uses


# ---------------------------------------------------------------------------
# package indexes


@dataclass(frozen=True)
class PackageIndex:
    host: str
    origin: str  # e.g. "pip index https://pypi.org/simple (pip's default)"


def package_indexes(sources: HostSources) -> list[PackageIndex]:
    return pip_indexes(sources) + apt_indexes(sources) + npm_indexes(sources)


def _index(url: str, what: str, where: str) -> PackageIndex | None:
    """The host of ``url`` (None for file: URLs and paths), with a description that
    never shows credentials."""
    scheme, _, rest = url.partition(":")
    if "+" in scheme:  # apt's mirror+http:, tor+https: …
        url = scheme.rsplit("+", 1)[1] + ":" + rest
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if not host or parts.scheme.lower() in ("file", "cdrom", "copy"):
        return None
    netloc = host if ":" not in host else f"[{host}]"
    if parts.port:
        netloc += f":{parts.port}"
    shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return PackageIndex(host, f"{what} {shown}{f' in {where}' if where else ''}")


def _homes(env: Mapping[str, str]) -> list[Path]:
    homes = [Path(env["HOME"])] if env.get("HOME") else [Path.home()]
    sudo_user = env.get("SUDO_USER")
    if sudo_user:
        try:
            homes.append(Path(pwd.getpwnam(sudo_user).pw_dir))
        except KeyError:
            pass
    return list(dict.fromkeys(homes))


def pip_config_files(env: Mapping[str, str]) -> tuple[Path, ...]:
    """pip's configuration files, as ``pip config list`` reads them: global, user, site, PIP_CONFIG_FILE."""
    if env.get("PIP_CONFIG_FILE") == os.devnull:
        return ()
    files = [
        Path(directory) / "pip" / "pip.conf"
        for directory in (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")
        if directory
    ]
    files.append(Path("/etc/pip.conf"))
    for home in _homes(env):
        files.append(home / ".pip" / "pip.conf")
        config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
        files.append(config_home / "pip" / "pip.conf")
    files.append(Path(sys.prefix) / "pip.conf")
    if env.get("VIRTUAL_ENV"):
        files.append(Path(env["VIRTUAL_ENV"]) / "pip.conf")
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    return tuple(dict.fromkeys(files))


_PIP_KEYS = {"index-url": "pip index", "extra-index-url": "pip extra index", "find-links": "pip find-links"}


def pip_indexes(sources: HostSources) -> list[PackageIndex]:
    env = sources.env
    found: list[PackageIndex | None] = []
    index_set = False
    files = sources.pip_configs if sources.pip_configs is not None else pip_config_files(env)
    for path in files:
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        try:
            if not parser.read(path):
                continue
        except (configparser.Error, UnicodeDecodeError, OSError):
            continue
        for section in parser.sections():
            for key, value in parser.items(section):
                what = _PIP_KEYS.get(key.lower().replace("_", "-"))
                if what:
                    index_set |= what == "pip index"
                    found += [_index(url, what, str(path)) for url in value.split()]
    for variable, key in (
        ("PIP_INDEX_URL", "index-url"),
        ("PIP_EXTRA_INDEX_URL", "extra-index-url"),
        ("PIP_FIND_LINKS", "find-links"),
    ):
        if env.get(variable):
            index_set |= key == "index-url"
            found += [_index(url, _PIP_KEYS[key], variable) for url in env[variable].split()]
    indexes = [index for index in found if index is not None]
    if not index_set:
        indexes.append(
            PackageIndex(urlsplit(PIP_DEFAULT_INDEX).hostname or "", f"pip index {PIP_DEFAULT_INDEX}, pip's default")
        )
    if not index_set or any(index.host == urlsplit(PIP_DEFAULT_INDEX).hostname for index in indexes):
        indexes.append(PackageIndex(PIP_DEFAULT_FILE_HOST, f"pip's file host for {PIP_DEFAULT_INDEX}"))
    return indexes


def apt_source_files() -> tuple[Path, ...]:
    files = [Path("/etc/apt/sources.list")]
    files += sorted(
        Path(p) for p in glob.glob("/etc/apt/sources.list.d/*.list") + glob.glob("/etc/apt/sources.list.d/*.sources")
    )
    return tuple(files)


def apt_indexes(sources: HostSources) -> list[PackageIndex]:
    found: list[PackageIndex | None] = []
    for path in sources.apt_sources if sources.apt_sources is not None else apt_source_files():
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            found += _deb822_uris(text, path)
        else:
            for number, words in _lines_of(text):
                if words and words[0] in ("deb", "deb-src"):
                    rest = words[1:]
                    if rest and rest[0].startswith("["):  # [ options ] may span words
                        while rest and not rest[0].endswith("]"):
                            rest = rest[1:]
                        rest = rest[1:]
                    if rest:
                        found.append(_index(rest[0], "apt source", f"{path} line {number}"))
    return [index for index in found if index is not None]


def _deb822_uris(text: str, path: Path) -> list[PackageIndex | None]:
    """URIs of the enabled stanzas of a deb822 ``.sources`` file."""
    found: list[PackageIndex | None] = []
    stanza: dict[str, tuple[int, str]] = {}
    last = ""

    def flush() -> None:
        if stanza.get("enabled", (0, "yes"))[1].strip().lower() != "no" and "uris" in stanza:
            number, value = stanza["uris"]
            found.extend(_index(uri, "apt source", f"{path} line {number}") for uri in value.split())
        stanza.clear()

    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            continue
        if not line.strip():
            flush()
        elif line[0] in " \t" and last:
            stanza[last] = (stanza[last][0], stanza[last][1] + " " + line.strip())
        elif ":" in line:
            key, _, value = line.partition(":")
            last = key.strip().lower()
            stanza[last] = (number, value.strip())
    flush()
    return found


def npm_config_files(env: Mapping[str, str]) -> tuple[Path, ...]:
    files = [
        Path(value)
        for key, value in env.items()
        if key.lower() in ("npm_config_userconfig", "npm_config_globalconfig") and value
    ]
    files += [home / ".npmrc" for home in _homes(env)] + [Path("/etc/npmrc"), Path("/usr/etc/npmrc")]
    return tuple(dict.fromkeys(files))


def npm_indexes(sources: HostSources) -> list[PackageIndex]:
    env = sources.env
    found: list[PackageIndex | None] = []
    default_set = False

    def expand(value: str) -> str:
        return re.sub(r"\$\{([^}]+)\}", lambda m: env.get(m.group(1), ""), value.strip().strip("'\""))

    for path in sources.npm_configs if sources.npm_configs is not None else npm_config_files(env):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            key, sep, value = line.partition("=")
            key = key.strip()
            if not sep or key.startswith((";", "#")):
                continue
            if key == "registry" or re.fullmatch(r"@[^:]+:registry", key):
                default_set |= key == "registry"
                found.append(_index(expand(value), "npm registry", f"{path} line {number}"))
    for key, value in env.items():
        if key.lower() == "npm_config_registry" and value:
            default_set = True
            found.append(_index(expand(value), "npm registry", key))
    indexes = [index for index in found if index is not None]
    if not default_set:
        indexes.append(
            PackageIndex(
                urlsplit(NPM_DEFAULT_REGISTRY).hostname or "", f"npm registry {NPM_DEFAULT_REGISTRY}, npm's default"
            )
        )
    return indexes


# ---------------------------------------------------------------------------
# name resolution


def resolve_names(names: Iterable[str], timeout: float = 2.0) -> dict[str, list[str]]:
    """IPv4 addresses of each name, all looked up at once in daemon threads; a name
    without an answer within ``timeout`` seconds (DNS may hang) is left out."""
    results: dict[str, list[str]] = {}

    def lookup(name: str) -> None:
        try:
            infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return
        results[name] = sorted({str(info[4][0]) for info in infos})

    threads = [
        threading.Thread(target=lookup, args=(name,), name=f"resolve {name}", daemon=True)
        for name in dict.fromkeys(names)
        if name
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {name: addresses for name, addresses in list(results.items())}
