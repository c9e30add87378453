"""Vendor the published Kamaji and Cluster API CRDs into lab/acpcheck_lab/crds/ (test API server data).

    python scripts/vendor_crds.py MIRROR_DIR...

Each MIRROR_DIR is a bare git mirror of one source repository (``git clone --mirror`` of
github.com/clastix/kamaji, github.com/clastix/cluster-api-control-plane-provider-kamaji or
github.com/kubernetes-sigs/cluster-api); the repository is told by the mirror's directory
name (``owner+name``). The CRD files are read from its HEAD with ``git show``, their
``description`` texts are dropped (hundreds of kB of prose; the schema structure, every
type, enum, pattern, bound, default, required list and x-kubernetes-* marker is kept) and
written with a header naming the source repository, path, commit and licence (Apache-2.0,
the licence of all three projects). lab/acpcheck_lab/crds/SOURCES.md lists them too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

CRD_DIR = Path(__file__).resolve().parents[1] / "lab" / "acpcheck_lab" / "crds"

#: repository -> CRD files (paths in the repository) vendored from it.
FILES: dict[str, tuple[str, ...]] = {
    "clastix/kamaji": (
        "charts/kamaji/crds/kamaji.clastix.io_datastores.yaml",
        "charts/kamaji/crds/kamaji.clastix.io_tenantcontrolplanes.yaml",
    ),
    "clastix/cluster-api-control-plane-provider-kamaji": (
        "config/crd/bases/controlplane.cluster.x-k8s.io_kamajicontrolplanes.yaml",
    ),
    "kubernetes-sigs/cluster-api": (
        "core/config/crd/bases/cluster.x-k8s.io_clusters.yaml",
        "bootstrap/kubeadm/config/crd/bases/bootstrap.cluster.x-k8s.io_kubeadmconfigs.yaml",
        "bootstrap/kubeadm/config/crd/bases/bootstrap.cluster.x-k8s.io_kubeadmconfigtemplates.yaml",
    ),
}


def without_descriptions(value: Any) -> Any:
    """``value`` with every ``description`` whose value is text removed (a property NAMED description
    is a schema, a mapping, and stays)."""
    if isinstance(value, dict):
        return {
            key: without_descriptions(item)
            for key, item in value.items()
            if not (key == "description" and isinstance(item, str))
        }
    if isinstance(value, list):
        return [without_descriptions(item) for item in value]
    return value


def git(mirror: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(mirror), *args], capture_output=True, text=True, check=True).stdout


def vendor(mirror: Path) -> list[str]:
    repository = mirror.parent.name.replace("+", "/") if mirror.name == "repo" else mirror.name.replace("+", "/")
    commit = git(mirror, "rev-parse", "HEAD").strip()
    date = git(mirror, "log", "-1", "--format=%cs", "HEAD").strip()
    written = []
    for path in FILES[repository]:
        crd = without_descriptions(yaml.safe_load(git(mirror, "show", f"HEAD:{path}")))
        header = (
            f"# {crd['spec']['names']['kind']} ({crd['metadata']['name']}): the CRD {repository} publishes,\n"
            f"# https://github.com/{repository}/blob/{commit}/{path}\n"
            f"# (commit {commit}, {date}). Licence: Apache-2.0 (https://github.com/{repository}/blob/{commit}/LICENSE).\n"
            "# Vendored by scripts/vendor_crds.py: the description texts are removed, nothing else is changed.\n"
            "# The acpcheck test API server (a stand-in for kube-apiserver) serves it and validates objects by it.\n"
            "---\n"
        )
        target = CRD_DIR / Path(path).name
        target.write_text(header + yaml.safe_dump(crd, sort_keys=False, width=120))
        written.append(f"{target.name}: {repository}@{commit[:12]} {path}")
    return written


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for mirror in argv:
        for line in vendor(Path(mirror)):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
