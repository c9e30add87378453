"""Infra, log and custom role nodes (Cluster Node Planning), verified on the live cluster and
made by their steps.

The plan's ``spec.nodeRoles`` lists which Node gets which role. The docs' procedure is two
commands per node, which the steps perform through the Kubernetes API (a JSON merge patch
of the Node, journaled and undone like any change):

    kubectl label nodes <node> node-role.kubernetes.io/<role>="" --overwrite
    kubectl taint nodes <node> node-role.kubernetes.io/<role>=<value>:NoSchedule

ACP-ROLE-001 wants the role label, ACP-ROLE-002 the NoSchedule taint with the planned
value. The docs say these operations are not supported on EKS, third-party and
immutable-OS clusters: the steps are refused there (``remediation.refusals``), while the
checks still report what is missing.
"""

from __future__ import annotations

from typing import Any

from acpcheck import Scope, Severity, check, fail
from acpcheck.checks.support import PlannedInCluster
from acpcheck.constants import ACP_DOCS
from acpcheck.model.plan import ClusterPlan, NodeRoleAssignment
from acpcheck.remediation import Changes, ClusterObjects, ObjectChange, Ref, cluster_step
from acpcheck.sources.cluster import NODES, ROLE_LABEL_PREFIX, ClusterView

NODE_PLANNING_PAGES = [f"{ACP_DOCS}/{version}/configure/clusters/acp-node-planning.html" for version in ("4.0", "4.3")]
UPSTREAM_TAINTS = "https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/"
EFFECT = "NoSchedule"

#: Any cluster type: on EKS, third-party and immutable-OS clusters the finding stands and
#: the steps are refused, naming the doc.
APPLIES = PlannedInCluster(wants=lambda plan: bool(plan.spec.node_roles), what="spec.nodeRoles")
TAGS = frozenset({"roles", "scheduling"})


def role_label(role: str) -> str:
    return ROLE_LABEL_PREFIX + role


def taint_of(assignment: NodeRoleAssignment) -> dict[str, str]:
    return {"key": role_label(assignment.role), "value": assignment.taint or "", "effect": EFFECT}


def _nodes(cluster: ClusterView) -> dict[str, dict[str, Any]]:
    return {str(node.get("name")): node for node in cluster.items(NODES)}


def _has_taint(taints: list[dict[str, Any]], wanted: dict[str, str]) -> bool:
    return any(
        t.get("key") == wanted["key"] and (t.get("value") or "") == wanted["value"] and t.get("effect") == EFFECT
        for t in taints
    )


@check(
    id="ACP-ROLE-001",
    title="planned infra, log and custom role nodes carry their role label",
    severity=Severity.MEDIUM,
    scope=Scope.CLUSTER,
    applies=APPLIES,
    tags=TAGS,
    refs=[*NODE_PLANNING_PAGES],
    remediation=(
        'kubectl label nodes <node> node-role.kubernetes.io/<role>="" --overwrite (acpcheck remediate does it: '
        "step ACP-ROLE-001/role-label)"
    ),
)
def check_role_labels(plan: ClusterPlan, cluster: ClusterView) -> None:
    """A cluster gives nodes roles with the role label ``node-role.kubernetes.io/<role>``
    (Cluster Node Planning): infra nodes host infrastructure components, log nodes the
    logging components, and a custom role whatever its workloads select with a
    ``nodeSelector`` on that label. Without the label those workloads cannot be placed."""
    nodes = _nodes(cluster)
    missing, absent = [], []
    for assignment in plan.spec.node_roles:
        node = nodes.get(assignment.node)
        if node is None:
            absent.append(assignment.node)
        elif role_label(assignment.role) not in (node.get("roleLabels") or {}):
            missing.append(f"{assignment.node} has no label {role_label(assignment.role)}")
    if absent:
        fail(
            f"the cluster has no Node {', '.join(sorted(absent))} (spec.nodeRoles names it)"
            + (f"; {'; '.join(missing)}" if missing else "")
        )
    if missing:
        fail("; ".join(missing))


@check(
    id="ACP-ROLE-002",
    title="planned infra, log and custom role nodes carry their NoSchedule role taint",
    severity=Severity.MEDIUM,
    scope=Scope.CLUSTER,
    applies=APPLIES,
    tags=TAGS,
    refs=[*NODE_PLANNING_PAGES, UPSTREAM_TAINTS],
    remediation=(
        "kubectl taint nodes <node> node-role.kubernetes.io/<role>=<value>:NoSchedule (acpcheck remediate does "
        "it: step ACP-ROLE-002/role-taint)"
    ),
)
def check_role_taints(plan: ClusterPlan, cluster: ClusterView) -> None:
    """The role taint ``node-role.kubernetes.io/<role>=<value>:NoSchedule`` keeps every
    workload that does not tolerate it off the role node (Cluster Node Planning, step 2);
    without it an infra or log node fills with ordinary applications. ``taint: null`` in
    the plan asks for the label only."""
    nodes = _nodes(cluster)
    problems = []
    for assignment in plan.spec.node_roles:
        if assignment.taint is None or assignment.node not in nodes:
            continue  # no taint wanted; a missing Node is ACP-ROLE-001's finding
        wanted = taint_of(assignment)
        if not _has_taint(nodes[assignment.node].get("taints") or [], wanted):
            problems.append(f"{assignment.node} has no taint {wanted['key']}={wanted['value']}:{EFFECT}")
    if problems:
        fail("; ".join(problems))


# ---------------------------------------------------------------------------
# Steps


@cluster_step(
    fixes=check_role_labels,
    name="role-label",
    does='labels each planned Node node-role.kubernetes.io/<role>="" (a merge patch of the Node)',
)
def role_label_step(cluster: ClusterObjects) -> Changes:
    actions, notes = [], []
    for assignment in cluster.plan.spec.node_roles:
        node = cluster.get("nodes", assignment.node)
        if node is None:
            notes.append(
                f"Node {assignment.node} does not exist; nothing to label (is spec.nodeRoles[].node the Node's name?)"
            )
            continue
        key = role_label(assignment.role)
        if key in ((node.get("metadata") or {}).get("labels") or {}):
            continue
        actions.append(
            ObjectChange(
                Ref("nodes", assignment.node),
                "patch",
                f"make it a {assignment.role} node",
                fields={("metadata", "labels", key): (None, "")},
            )
        )
    return Changes(actions=tuple(actions), notes=tuple(notes))


@cluster_step(
    fixes=check_role_taints,
    name="role-taint",
    does="taints each planned Node node-role.kubernetes.io/<role>=<value>:NoSchedule (a merge patch of its taints)",
)
def role_taint_step(cluster: ClusterObjects) -> Changes:
    actions, notes = [], []
    for assignment in cluster.plan.spec.node_roles:
        node = cluster.get("nodes", assignment.node)
        if assignment.taint is None or node is None:
            continue
        wanted = taint_of(assignment)
        taints = list((node.get("spec") or {}).get("taints") or [])
        if _has_taint(taints, wanted):
            continue
        kept = []
        for taint in taints:
            if taint.get("key") == wanted["key"] and taint.get("effect") == EFFECT:
                notes.append(
                    f"{assignment.node}: replaces its taint "
                    f"{taint.get('key')}={taint.get('value') or ''}:{EFFECT} with value {wanted['value']!r} "
                    "(the plan's)"
                )
                continue
            kept.append(taint)
        before = (node.get("spec") or {}).get("taints")
        actions.append(
            ObjectChange(
                Ref("nodes", assignment.node),
                "patch",
                f"keep workloads off the {assignment.role} node",
                fields={("spec", "taints"): (before, [*kept, wanted])},
            )
        )
    return Changes(actions=tuple(actions), notes=tuple(notes))
