"""Where the docs say an operation is unsupported, remediation refuses it: a clear
message naming the doc, and nothing changed at all (not a partial change).

Node OS changes are refused on immutable-OS clusters (``spec.cluster.type:
immutable``) and on any node that runs an immutable OS: such nodes are
image-provisioned and their OS belongs to the platform, and node preprocessing says
its checks do not apply to them. Cluster steps are refused where their docs say so:
node roles (infra, log, custom) on EKS, third-party (imported, registered) and
immutable-OS clusters (Cluster Node Planning), and any etcd encryption change on the
global cluster (the etcd Encryption page: not supported on global).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acpcheck.constants import ETCD_ENCRYPTION, NODE_PLANNING, PREPROCESSING
from acpcheck.matrix.os import IMMUTABLE_OS_IDS, IMMUTABLE_OS_NAMES

if TYPE_CHECKING:
    from acpcheck.facts.model import NodeContext
    from acpcheck.model.plan import ClusterPlan

#: Clusters overview (cluster management models): on platform-provisioned
#: infrastructure the node OS is managed by the platform (Immutable OS only).
MANAGEMENT_MODELS = "https://github.com/alauda/acp-docs/blob/master/docs/en/overview/cluster-management-models.mdx"
SOURCES = (
    f"{PREPROCESSING} (node preprocessing does not apply to Immutable Infrastructure); {MANAGEMENT_MODELS} (the "
    "platform manages the node OS)"
)


def plan_refusal(plan: ClusterPlan) -> str | None:
    """Why no node of ``plan`` may be changed, or None."""
    if plan.spec.cluster.type == "immutable":
        return (
            f"refused: cluster {plan.metadata.name} is an immutable-OS cluster; changing its nodes' OS is not "
            f"supported: the nodes are image-provisioned and the platform manages their OS (source: {SOURCES}). "
            "Nothing was changed."
        )
    return None


def node_refusal(node: NodeContext) -> str | None:
    """Why ``node``'s OS may not be changed, or None."""
    facts = node.facts
    if facts.os_id in IMMUTABLE_OS_IDS or any(name in (facts.os_pretty_name or "") for name in IMMUTABLE_OS_NAMES):
        return (
            f"refused: {node.name} runs an immutable OS ({facts.os_pretty_name or facts.os_id}); changing it is not "
            f"supported: the platform manages the OS of immutable nodes (source: {SOURCES}). Nothing was changed on "
            f"{node.name}."
        )
    return None


#: Cluster types that are third-party clusters (ACP did not build them).
THIRD_PARTY_TYPES = frozenset({"imported", "registered"})


def cluster_step_refusal(plan: ClusterPlan, check_id: str, nodes: list[dict[str, Any]] | None = None) -> str | None:
    """Why a cluster step of ``check_id`` may not run on ``plan``'s cluster, or None.
    ``nodes``: the live Nodes as the cluster source summarises them (EKS, OS image)."""
    name = plan.metadata.name
    if check_id.startswith("ACP-ROLE-"):
        why = None
        if plan.spec.cluster.type == "immutable":
            why = "an immutable-OS cluster"
        elif plan.spec.cluster.type in THIRD_PARTY_TYPES:
            why = f"a third-party cluster (spec.cluster.type: {plan.spec.cluster.type})"
        else:
            for node in nodes or ():
                image = str(node.get("osImage") or "")
                if node.get("eks"):
                    why = f"an EKS cluster (Node {node.get('name')} is an EKS node)"
                    break
                if any(os_id.replace("-", " ") in image.lower() for os_id in IMMUTABLE_OS_IDS) or any(
                    n in image for n in IMMUTABLE_OS_NAMES
                ):
                    why = f"a cluster whose nodes run an immutable OS (Node {node.get('name')}: {image})"
                    break
        if why:
            return (
                f"refused: cluster {name} is {why}; adding infra, log or custom role nodes is not supported there "
                f'(source: {NODE_PLANNING}, "only applicable to non-immutable clusters"). Nothing was changed.'
            )
    if check_id.startswith("ACP-ENC-") and plan.spec.cluster.role == "global":
        return (
            f"refused: cluster {name} is the global cluster; etcd encryption changes are not supported on the global "
            f"cluster (source: {ETCD_ENCRYPTION}). Nothing was changed."
        )
    return None
