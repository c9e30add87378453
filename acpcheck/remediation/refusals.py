"""Where the docs say an operation is unsupported, remediation refuses it: a clear
message naming the doc, and nothing changed at all (not a partial change).

Node OS changes are refused on immutable-OS clusters (``spec.cluster.type:
immutable``) and on any node that runs an immutable OS: such nodes are
image-provisioned and their OS belongs to the platform, and node preprocessing says
its checks do not apply to them. (The refusals of the cluster steps, node roles on
EKS, third-party and immutable-OS clusters and etcd encryption changes on the global
cluster, come with those steps.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from acpcheck.facts.model import NodeContext
    from acpcheck.model.plan import ClusterPlan

DOCS = "https://docs.alauda.io/container_platform"
#: The 4.3 node preprocessing page: its checks do not apply to Immutable Infrastructure.
PREPROCESSING_43 = f"{DOCS}/4.3/install/prepare/node_preprocessing.html"
#: Clusters overview (cluster management models): on platform-provisioned
#: infrastructure the node OS is managed by the platform (Immutable OS only).
MANAGEMENT_MODELS = "https://github.com/alauda/acp-docs/blob/master/docs/en/overview/cluster-management-models.mdx"
SOURCES = f"{PREPROCESSING_43} (node preprocessing does not apply to Immutable Infrastructure); {MANAGEMENT_MODELS} (the platform manages the node OS)"

#: os-release IDs of the immutable operating systems the docs name (openSUSE MicroOS,
#: the one the platform supports, and its SUSE build; Flatcar).
IMMUTABLE_OS_IDS = frozenset({"opensuse-microos", "sl-micro", "suse-microos", "flatcar"})
#: Fedora CoreOS says ID=fedora; its name tells it apart.
IMMUTABLE_OS_NAMES = ("CoreOS",)


def plan_refusal(plan: ClusterPlan) -> str | None:
    """Why no node of ``plan`` may be changed, or None."""
    if plan.spec.cluster.type == "immutable":
        return (
            f"refused: cluster {plan.metadata.name} is an immutable-OS cluster; changing its nodes' OS is not supported: "
            f"the nodes are image-provisioned and the platform manages their OS (source: {SOURCES}). Nothing was changed."
        )
    return None


def node_refusal(node: NodeContext) -> str | None:
    """Why ``node``'s OS may not be changed, or None."""
    facts = node.facts
    if facts.os_id in IMMUTABLE_OS_IDS or any(name in (facts.os_pretty_name or "") for name in IMMUTABLE_OS_NAMES):
        return (
            f"refused: {node.name} runs an immutable OS ({facts.os_pretty_name or facts.os_id}); changing it is not supported: "
            f"the platform manages the OS of immutable nodes (source: {SOURCES}). Nothing was changed on {node.name}."
        )
    return None
