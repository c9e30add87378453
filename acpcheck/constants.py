"""Constants several modules share: the ACP documentation links, the plan's annotation keys,
the default output directory.

A docs page that more than one module cites is defined here once; a page only one
check module cites is defined in that module, from ``ACP_DOCS``. Exit codes are not
here: they belong with the statuses they add up from (``acpcheck.model.result``).

This module imports nothing from acpcheck: it sits at the bottom of the layer order
(docs/architecture.md, "Layers").
"""

from __future__ import annotations

from pathlib import Path

#: Where a run, an apply and its journal write unless told (``--out``): relative to the working
#: directory, git-ignored in a checkout; not part of the ``acpcheck.reports`` package data.
DEFAULT_OUT = Path("reports/out")

#: The root of the Alauda Container Platform documentation; a page is ``{ACP_DOCS}/<minor>/<path>``.
ACP_DOCS = "https://docs.alauda.io/container_platform"


def preprocessing_page(version: str) -> str:
    """The node preprocessing page of an ACP version ('4.3.1' -> the 4.3 page)."""
    minor = ".".join(version.split(".")[:2])
    return f"{ACP_DOCS}/{minor}/install/prepare/node_preprocessing.html"


#: Node preprocessing (4.3); its checks do not apply to Immutable Infrastructure.
PREPROCESSING = preprocessing_page("4.3")
PREREQUISITES = f"{ACP_DOCS}/4.3/install/prepare/prerequisites.html"
DISK_CONFIGURATION = f"{ACP_DOCS}/4.3/configure/scalability/disk_configuration.html"
NODE_ADD = f"{ACP_DOCS}/4.3/configure/clusters/nodes/node-add.html"
ON_PREMISES = f"{ACP_DOCS}/4.3/configure/clusters/on-premises.html"
GLOBAL_DR = f"{ACP_DOCS}/4.3/install/global_dr.html"
#: Cluster Node Planning: infra and custom role nodes only on non-immutable clusters.
NODE_PLANNING = f"{ACP_DOCS}/4.3/configure/clusters/acp-node-planning.html"
#: etcd Encryption; the Encryption Manager does not support the global cluster.
ETCD_ENCRYPTION = f"{ACP_DOCS}/4.3/configure/clusters/etcd-encryption.html"
#: How to annotate a managed cluster with the platform's URL (``PLATFORM_URL_ANNOTATION``).
PLATFORM_URL_PAGE = f"{ACP_DOCS}/4.3/configure/clusters/managed/how-to/annotate-platform-url.html"

#: The cluster annotation (``spec.cluster.annotations``) holding the platform's URL, as the page above sets it.
PLATFORM_URL_ANNOTATION = "cpaas.io/platform-url"
