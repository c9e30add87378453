"""The fleet file: the clusters of one ACP platform that go to one target ACP version together.

A ``kind: Fleet`` file (docs/interfaces.md, "Fleet file") names the target ACP version and
the clusters: ``global`` and its workload clusters, each with its role, type, kubeconfig
(a path: secrets by reference only) and optionally a plan file for plan and node checks.
It is loaded like a plan (``acpcheck.model.plan``): located YAML, the literal-secret scan,
the schema, every problem at ``file:line`` and exit 4 (``InputError``); a plan file it names
is loaded by the plan loader and reports its own problems at its own lines.

Every cluster becomes a ``FleetMember`` with a real ``ClusterPlan``: the plan file's, or for
an entry without one a plan made from the entry (``entry_plan``, ``declared`` False), on which
only the checks declared ``plan_free`` run (``acpcheck.grading.not_applicable``). Clusters the
global cluster lists and the fleet file does not name are added by ``discover_members``.

xdist workers receive the fleet as plain data (``fleet_to_data``/``fleet_from_data``): the
fleet file's and the plan files' text, so a worker rebuilds the same members without reading
a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr

from acpcheck.errors import InputError, Problem
from acpcheck.model.plan import (
    ACP_VERSION_PATTERN,
    PLATFORM_MANAGED,
    ClusterPlan,
    ClusterRole,
    ClusterType,
    Spec,
    plan_from_document,
    unknown_acp_version,
)
from acpcheck.model.validation import FORMAT_EXAMPLES, find_literal_secrets, validate_document
from acpcheck.yamlsource import FieldPath, LocatedDocument, load_yaml, parse_yaml

#: A cluster's name: a DNS-1123 label, as Kubernetes and ACP name clusters.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
FORMAT_EXAMPLES[DNS_LABEL_PATTERN] = "business-1 (lower-case letters, digits and '-', at most 63)"

#: The name ACP gives its global cluster in its cluster registry (``cluster.platform.tkestack.io
#: global``: https://docs.alauda.io/container_platform/4.3/install/prepare/download.html).
GLOBAL_CLUSTER_NAME = "global"

#: ``spec.cluster.kubernetesVersion`` of a plan made from a fleet entry: the entry says nothing
#: about it, and no ``plan_free`` check reads it (the live version comes from the cluster).
ENTRY_KUBERNETES_PLACEHOLDER = "0.0.0"

#: The ACP docs' access paths for a cluster: "Download Kubeconfig" on the cluster's page, or a
#: token kubeconfig for ``https://<platform-access-address>/kubernetes/<cluster-name>``.
ACCESS_DOCS = "https://github.com/alauda/acp-docs/blob/master/docs/en/configure/clusters/how-to/access-cluster-with-kubeconfig.mdx"

#: ``spec.type`` of a TKEStack Cluster (ACP's cluster registry) -> the plan's cluster type.
#: TKEStack's cluster providers are ``Baremetal`` (it installs the cluster) and ``Imported``
#: (https://github.com/tkestack/tke/tree/master/pkg/platform/provider). Any other type was not
#: installed by the Baremetal provider, so it is read as imported: the type that claims least
#: (an imported plan may leave out its network; our reading, not a documented mapping).
REGISTRY_TYPES: dict[str, ClusterType] = {"Baremetal": "on-premise", "Imported": "imported"}


def registry_cluster_type(registry_type: object) -> ClusterType:
    """The plan's cluster type for a TKEStack Cluster's ``spec.type`` (see REGISTRY_TYPES)."""
    return REGISTRY_TYPES.get(registry_type, "imported") if isinstance(registry_type, str) else "imported"


# ---------------------------------------------------------------------------
# The file


class FleetMetadata(Spec):
    """Which fleet this is."""

    name: str = Field(
        max_length=63, pattern=DNS_LABEL_PATTERN, description="the fleet's name (fleet rules' target is fleet:<name>)"
    )


class FleetAcp(Spec):
    """The ACP versions of the fleet: where it goes, and where it is today."""

    version: str = Field(pattern=ACP_VERSION_PATTERN, description="the target ACP version, e.g. 4.3 or 4.3.1")
    upgrade_from: str | None = Field(
        default=None,
        pattern=ACP_VERSION_PATTERN,
        description="the platform's current ACP version (a cluster entry may give its own)",
    )


class FleetCluster(Spec):
    """One cluster of the fleet and how acpcheck reaches it."""

    name: str = Field(
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="the cluster's name, unique in the fleet (as ACP names it; a plan file's metadata.name)",
    )
    role: ClusterRole = Field(
        default="workload",
        description="global: the cluster that runs ACP itself (at most one); workload: a cluster ACP manages. "
        "Default: the plan file's, else workload",
    )
    type: ClusterType = Field(
        default="on-premise",
        description="how the cluster came to ACP, as a plan's spec.cluster.type. Default: the plan file's, else "
        "on-premise",
    )
    kubeconfig: str | None = Field(
        default=None,
        min_length=1,
        description="kubeconfig file for this cluster, relative to the fleet file (replaces the plan file's); "
        "a path, never the credentials themselves",
    )
    context: str | None = Field(default=None, min_length=1, description="the kubeconfig context to use")
    plan: str | None = Field(
        default=None,
        min_length=1,
        description="a plan file for this cluster (relative to the fleet file), for the plan and node checks",
    )
    upgrade_from: str | None = Field(
        default=None, pattern=ACP_VERSION_PATTERN, description="this cluster's current ACP version"
    )


class FleetSpec(Spec):
    """The target and the clusters."""

    acp: FleetAcp = Field(description=FleetAcp.__doc__)
    discover: bool = Field(
        default=True,
        description="add the clusters the global cluster lists (its platform.tkestack.io clusters) that the file "
        "does not name",
    )
    clusters: list[FleetCluster] = Field(min_length=1, description="the clusters, global first by convention")


@dataclass(frozen=True)
class FleetMember:
    """One cluster of a loaded fleet."""

    name: str
    role: str  # global | workload
    type: str
    #: the cluster's current ACP version: the plan file's, else the entry's, else the fleet's
    upgrade_from: str | None
    #: the plan file's (declared), or one made from the entry (``entry_plan``: not declared)
    plan: ClusterPlan
    #: listed by the global cluster, not written in the fleet file
    discovered: bool = False
    #: why acpcheck has no way into the cluster (every check of it is an ERROR with this reason)
    unreachable: str | None = None


class Fleet(Spec):
    """A fleet for acpcheck: the target ACP version and the clusters that go there (docs/interfaces.md)."""

    api_version: Literal["acpcheck/v1"] = Field(description="the file format: acpcheck/v1")
    kind: Literal["Fleet"] = Field(description="always Fleet")
    metadata: FleetMetadata = Field(description=FleetMetadata.__doc__)
    spec: FleetSpec = Field(description=FleetSpec.__doc__)

    _source: LocatedDocument | None = PrivateAttr(default=None)
    #: where relative paths of the file point: the fleet file's directory, made absolute once
    _base: str = PrivateAttr(default=".")
    _members: tuple[FleetMember, ...] = PrivateAttr(default=())
    #: the text of every plan file read, by the path it was read from (for fleet_to_data)
    _plan_texts: dict[str, str] = PrivateAttr(default_factory=dict)
    #: what the global cluster listed, when discovery ran (for fleet_to_data)
    _listed: list[dict[str, Any]] | None = PrivateAttr(default=None)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def file(self) -> str:
        return self._source.file if self._source else "<fleet>"

    @property
    def target(self) -> str:
        """The target ACP version."""
        return self.spec.acp.version

    @property
    def members(self) -> list[FleetMember]:
        """The clusters, in file order, then the discovered ones."""
        return list(self._members)

    @property
    def global_member(self) -> FleetMember | None:
        return next((member for member in self._members if member.role == "global"), None)

    def member(self, name: str) -> FleetMember | None:
        return next((member for member in self._members if member.name == name), None)

    def where(self, *path: str | int) -> str:
        """``fleet.yaml:12`` for a field path such as ("spec", "clusters", 1, "name")."""
        line = self._source.line_of(path) if self._source else None
        return f"{self.file}:{line}" if line else self.file

    def problem(self, path: FieldPath, message: str) -> Problem:
        """A problem located at ``path`` of the fleet file."""
        if self._source is None:
            return Problem(self.file, None, "", message)
        return self._source.problem(path, message)

    def with_discovered(self, listed: list[dict[str, Any]]) -> Fleet:
        """This fleet plus the members ``discover_members`` finds in ``listed``."""
        fleet = self.model_copy()
        fleet._members = (*self._members, *discover_members(self, listed))
        fleet._listed = [dict(item) for item in listed]
        return fleet


# ---------------------------------------------------------------------------
# Loading

#: Reads one plan file's document by its path (a file on the controller, text on a worker).
PlanReader = Callable[[str], LocatedDocument]


def load_fleet(path: str | Path) -> Fleet:
    """Load and validate a fleet file and the plan files it names (InputError lists every problem)."""
    from acpcheck.matrix import known_acp_versions

    doc = load_yaml(path)
    return fleet_from_document(doc, known_acp_versions(), str(Path(doc.file).resolve().parent), load_yaml)


def fleet_from_document(
    doc: LocatedDocument, known_acp_versions: frozenset[str] | None, base: str, read_plan: PlanReader
) -> Fleet:
    """Validate a loaded fleet document and its members, or raise InputError with every problem.

    ``base``: the absolute directory relative kubeconfig paths resolve against (the fleet
    file's). Plan files are read with ``read_plan`` at the fleet file's directory joined with
    their path as written (relative to the working directory, like the fleet file's own name).
    """
    if not isinstance(doc.data, dict):
        raise InputError([doc.problem((), "a fleet must be a YAML mapping with apiVersion, kind, metadata and spec")])
    problems, hidden = find_literal_secrets(doc)
    fleet, schema_problems = validate_document(Fleet, doc, hidden=hidden)
    problems.extend(schema_problems)
    unknown = unknown_acp_version(doc, known_acp_versions)
    if unknown is not None:
        problems.append(unknown)
    if fleet is None or problems:
        _raise(doc, problems)
    assert fleet is not None
    fleet._source, fleet._base = doc, base
    members: list[FleetMember] = []
    for index, entry in enumerate(fleet.spec.clusters):
        member = _member(fleet, index, entry, known_acp_versions, read_plan, problems)
        if member is not None:
            members.append(member)
    problems.extend(_duplicates(fleet, members))
    _raise(doc, problems)
    fleet._members = tuple(members)
    return fleet


def _raise(doc: LocatedDocument, problems: list[Problem]) -> None:
    if problems:  # the fleet file's problems first, then each plan file's; each file's in line order
        raise InputError(sorted(problems, key=lambda p: (p.file != doc.file, p.file, p.line or 0)))


def _member(
    fleet: Fleet,
    index: int,
    entry: FleetCluster,
    known_acp_versions: frozenset[str] | None,
    read_plan: PlanReader,
    problems: list[Problem],
) -> FleetMember | None:
    """The member of entry ``index``; None (with its problems added) when its plan file is bad."""
    at: FieldPath = ("spec", "clusters", index)
    if entry.plan is None:
        plan = entry_plan(fleet, index)
        reachable = entry.kubeconfig is not None
        return FleetMember(
            name=entry.name,
            role=entry.role,
            type=entry.type,
            upgrade_from=entry.upgrade_from or fleet.spec.acp.upgrade_from,
            plan=plan,
            unreachable=None if reachable else _no_way_in(entry.name, "the fleet file gives no kubeconfig for it"),
        )
    plan_path = str(Path(fleet.file).parent / os.path.expanduser(entry.plan))
    try:
        plan_doc = read_plan(plan_path)
        text = plan_doc.text
        plan = plan_from_document(plan_doc, known_acp_versions)
    except InputError as error:
        # a problem inside the plan file is at its own line; one with the file as a whole
        # (missing, unreadable) is said at the entry that names it
        problems.extend(
            problem if problem.line is not None else fleet.problem((*at, "plan"), f"{problem.file}: {problem.message}")
            for problem in error.problems
        )
        return None
    if text is not None:
        fleet._plan_texts[plan_path] = text
    role = entry.role if "role" in entry.model_fields_set else plan.spec.cluster.role
    kind = entry.type if "type" in entry.model_fields_set else plan.spec.cluster.type
    found = len(problems)
    seen = f"plan {plan.file}"
    for field, wanted, planned, plan_at in (
        ("name", entry.name, plan.metadata.name, ("metadata", "name")),
        ("role", role, plan.spec.cluster.role, ("spec", "cluster", "role")),
        ("type", kind, plan.spec.cluster.type, ("spec", "cluster", "type")),
    ):
        if wanted != planned:
            problems.append(
                fleet.problem(
                    (*at, field),
                    f"{field} {wanted} differs from {seen}: {planned} ({plan.where(*plan_at)}); make them the same",
                )
            )
    if plan.spec.acp.version != fleet.target:
        problems.append(
            fleet.problem(
                (*at, "plan"),
                f"{seen} targets ACP {plan.spec.acp.version} ({plan.where('spec', 'acp', 'version')}), the fleet "
                f"ACP {fleet.target} ({fleet.where('spec', 'acp', 'version')}); make them the same",
            )
        )
    planned_from = plan.spec.acp.upgrade_from
    if entry.upgrade_from is not None and planned_from is not None and entry.upgrade_from != planned_from:
        problems.append(
            fleet.problem(
                (*at, "upgradeFrom"),
                f"upgradeFrom {entry.upgrade_from} differs from {seen}: {planned_from} "
                f"({plan.where('spec', 'acp', 'upgradeFrom')}); give it in one place",
            )
        )
    if len(problems) > found:
        return None
    if entry.kubeconfig is not None or entry.context is not None:
        plan = _with_access(plan, fleet, entry)
    return FleetMember(
        name=entry.name,
        role=role,
        type=kind,
        upgrade_from=planned_from or entry.upgrade_from or fleet.spec.acp.upgrade_from,
        plan=plan,
    )


def _duplicates(fleet: Fleet, members: list[FleetMember]) -> list[Problem]:
    """Names used twice, and more than one global cluster: at the later entry's line."""
    problems: list[Problem] = []
    first_line: dict[str, str] = {}
    global_at: str | None = None
    for index, entry in enumerate(fleet.spec.clusters):
        at: FieldPath = ("spec", "clusters", index)
        if entry.name in first_line:
            problems.append(
                fleet.problem((*at, "name"), f"cluster {entry.name} is already named at {first_line[entry.name]}")
            )
        else:
            first_line[entry.name] = fleet.where(*at, "name")
        member = next((m for m in members if m.name == entry.name), None)
        role = member.role if member is not None else entry.role
        if role == "global":
            if global_at is not None:
                problems.append(
                    fleet.problem((*at, "role"), f"a fleet has one global cluster; {global_at} already names one")
                )
            else:
                global_at = fleet.where(*at)
    return problems


def _kubeconfig_path(fleet: Fleet, path: str) -> str:
    expanded = os.path.expanduser(path)
    return expanded if os.path.isabs(expanded) else str(Path(fleet._base) / expanded)


def _with_access(plan: ClusterPlan, fleet: Fleet, entry: FleetCluster) -> ClusterPlan:
    """``plan`` with the entry's kubeconfig (an absolute path) and context in place of its own."""
    spec_update: dict[str, Any] = {}
    if entry.kubeconfig is not None:
        spec_update["kubeconfig"] = _kubeconfig_path(fleet, entry.kubeconfig)
    if entry.context is not None:
        spec_update["kubeconfig_context"] = entry.context
    return plan.model_copy(update={"spec": plan.spec.model_copy(update=spec_update)})


def _no_way_in(name: str, why: str) -> str:
    return (
        f"{why}: add an entry for {name} with its kubeconfig (ACP: Administrator > Clusters > Clusters > {name} > "
        "Actions > Download Kubeconfig, "
        f"or a token kubeconfig for https://<platform-access-address>/kubernetes/{name}; see {ACCESS_DOCS})"
    )


def entry_plan(fleet: Fleet, index: int) -> ClusterPlan:
    """The plan of fleet entry ``index``, which names no plan file: a validated ClusterPlan of
    what the entry says, ``declared`` False, whose lines (``plan.where``) are the entry's.

    - ``metadata.name``, ``spec.cluster.role``/``type``: the entry's;
    - ``spec.acp.version``: the fleet's target; ``upgradeFrom``: the entry's, else the fleet's;
    - ``spec.kubeconfig``: the entry's, as an absolute path; ``kubeconfigContext``: the entry's;
    - ``spec.cluster.kubernetesVersion``: ``ENTRY_KUBERNETES_PLACEHOLDER`` (no plan-free check
      reads it);
    - ``spec.network``: none, also for a type ACP builds (the schema asks a plan file for it;
      the entry does not know it, so checks that read it SKIP, ``When.NO_NETWORK``).
    """
    entry = fleet.spec.clusters[index]
    at: FieldPath = ("spec", "clusters", index)
    return _made_plan(
        fleet,
        name=entry.name,
        role=entry.role,
        kind=entry.type,
        upgrade_from=entry.upgrade_from or fleet.spec.acp.upgrade_from,
        kubeconfig=_kubeconfig_path(fleet, entry.kubeconfig) if entry.kubeconfig else None,
        context=entry.context,
        lines={
            (): at,
            ("metadata", "name"): (*at, "name"),
            ("spec", "cluster", "role"): (*at, "role"),
            ("spec", "cluster", "type"): (*at, "type"),
            ("spec", "kubeconfig"): (*at, "kubeconfig"),
            ("spec", "kubeconfigContext"): (*at, "context"),
            ("spec", "acp", "version"): ("spec", "acp", "version"),
            ("spec", "acp", "upgradeFrom"): (*at, "upgradeFrom")
            if entry.upgrade_from
            else ("spec", "acp", "upgradeFrom"),
        },
    )


def _made_plan(
    fleet: Fleet,
    *,
    name: str,
    role: str,
    kind: str,
    upgrade_from: str | None,
    kubeconfig: str | None,
    context: str | None,
    lines: dict[FieldPath, FieldPath],
) -> ClusterPlan:
    """A plan (not declared) of what the fleet says about one cluster, located in the fleet file:
    each plan field path in ``lines`` is at the line of the fleet field path it maps to."""
    assert fleet._source is not None
    acp: dict[str, Any] = {"version": fleet.target}
    if upgrade_from is not None:
        acp["upgradeFrom"] = upgrade_from
    spec: dict[str, Any] = {
        "acp": acp,
        "cluster": {"role": role, "type": kind, "kubernetesVersion": ENTRY_KUBERNETES_PLACEHOLDER},
        "kubeconfig": kubeconfig,
        "kubeconfigContext": context,
    }
    if kind in PLATFORM_MANAGED:  # the schema's requirement of a plan file; taken out again below
        spec["network"] = {"clusterCIDR": "192.0.2.0/24", "serviceCIDR": "198.51.100.0/24"}
    data = {"apiVersion": "acpcheck/v1", "kind": "ClusterPlan", "metadata": {"name": name}, "spec": spec}
    source = fleet._source
    located = LocatedDocument(
        file=source.file,
        data=data,
        lines={
            plan_path: line
            for plan_path, fleet_path in lines.items()
            if (line := source.line_of(fleet_path)) is not None
        },
    )
    plan, problems = validate_document(ClusterPlan, located)
    if plan is None:  # the fleet's schema allows only what a plan allows: a bug if reached
        raise InputError(problems)
    plan = plan.model_copy(update={"spec": plan.spec.model_copy(update={"network": None})})
    plan._source = located
    plan._declared = False
    return plan


# ---------------------------------------------------------------------------
# Discovery


def discover_members(fleet: Fleet, listed: list[dict[str, Any]]) -> list[FleetMember]:
    """The clusters the global cluster lists that the fleet does not name, as members.

    ``listed``: the global cluster's ``platform-clusters`` items as ``acpcheck.sources.cluster``
    keeps them (``name``, ``version``, ``type``, ``phase``, ``annotations``). ACP's own
    ``global`` and the fleet's global member are skipped, and so is every item without a name;
    nothing is discovered when the fleet says ``discover: false``. A discovered cluster is a
    workload cluster whose type follows ``REGISTRY_TYPES``, whose current ACP version is the
    fleet's ``upgradeFrom``, and which acpcheck cannot reach (``unreachable``): the fleet file
    gives no kubeconfig for it.
    """
    if not fleet.spec.discover:
        return []
    known = {member.name for member in fleet.members} | {GLOBAL_CLUSTER_NAME}
    found: list[FleetMember] = []
    for item in listed:
        name = item.get("name")
        if not isinstance(name, str) or not name or name in known:
            continue
        known.add(name)
        kind = registry_cluster_type(item.get("type"))
        plan = _made_plan(
            fleet,
            name=name,
            role="workload",
            kind=kind,
            upgrade_from=fleet.spec.acp.upgrade_from,
            kubeconfig=None,
            context=None,
            lines={(): ("spec", "discover"), ("spec", "acp", "version"): ("spec", "acp", "version")},
        )
        found.append(
            FleetMember(
                name=name,
                role="workload",
                type=kind,
                upgrade_from=fleet.spec.acp.upgrade_from,
                plan=plan,
                discovered=True,
                unreachable=_no_way_in(
                    name, "discovered on the global cluster; the fleet file gives no kubeconfig for it"
                ),
            )
        )
    return found


# ---------------------------------------------------------------------------
# Plain data for xdist workers, and the JSON Schema


def fleet_to_data(fleet: Fleet) -> dict[str, Any]:
    """The fleet as plain data (str, list, dict) for xdist's ``workerinput``: the text of the
    fleet file and of every plan file, the directory relative kubeconfigs resolve against, and
    what discovery was given, so that ``fleet_from_data`` rebuilds the same members."""
    source = fleet._source
    if source is None or source.text is None:
        raise ValueError("a fleet not loaded from text cannot be sent to workers")
    return {
        "file": source.file,
        "text": source.text,
        "base": fleet._base,
        "plans": dict(fleet._plan_texts),
        "listed": None if fleet._listed is None else [dict(item) for item in fleet._listed],
    }


def fleet_from_data(data: dict[str, Any]) -> Fleet:
    """The fleet ``fleet_to_data`` described, rebuilt without reading any file."""
    from acpcheck.matrix import known_acp_versions

    plans: dict[str, str] = data["plans"]

    def read_plan(path: str) -> LocatedDocument:
        if path not in plans:
            raise InputError([Problem(path, None, "", "the controller sent no text for this plan file")])
        return parse_yaml(plans[path], path)

    fleet = fleet_from_document(parse_yaml(data["text"], data["file"]), known_acp_versions(), data["base"], read_plan)
    listed = data.get("listed")
    return fleet if listed is None else fleet.with_discovered(listed)


def fleet_json_schema() -> dict[str, Any]:
    """JSON Schema of the fleet file, for editors."""
    schema = Fleet.model_json_schema(by_alias=True, mode="validation")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "urn:acpcheck:fleet:v1", **schema}
    schema["title"] = "acpcheck Fleet"
    return schema


__all__ = [
    "Fleet",
    "FleetMember",
    "discover_members",
    "entry_plan",
    "fleet_from_data",
    "fleet_from_document",
    "fleet_json_schema",
    "fleet_to_data",
    "load_fleet",
    "registry_cluster_type",
]
