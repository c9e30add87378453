"""Version matrices as data (``kubernetes.yaml``), validated when loaded.

Kubernetes versions are compared with ``packaging`` (PEP 440 specifiers), after
stripping what PEP 440 cannot read: a leading ``v`` and distribution build
suffixes such as ``-acp.1`` or ``-2`` (``v1.34.5-1`` -> ``1.34.5``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from acpcheck.errors import InputError
from acpcheck.yamlsource import load_yaml

MATRIX_FILE = Path(__file__).with_name("kubernetes.yaml")

PluginStatus = Literal["available", "maintenance", "removed"]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


def _specifier(value: str | None) -> str | None:
    if value is not None:
        try:
            SpecifierSet(value)
        except InvalidSpecifier:
            raise ValueError(f"{value!r} is not a version specifier") from None
    return value


class DockerSupport(_Data):
    available: bool
    gate: str | None = None
    gate_from_kubernetes: str | None = None
    blocks_upgrade: bool = False
    note: str | None = None
    source: str


class UpgradeRequirement(_Data):
    kubernetes: str

    _check = field_validator("kubernetes")(_specifier)


class Upgrade(_Data):
    source: str
    from_: dict[str, UpgradeRequirement] = Field(alias="from")


class AcpRelease(_Data):
    """What one ACP minor release supports."""

    new_clusters: list[str]
    compatible: list[str]
    third_party: str | None
    source: str
    docker: DockerSupport
    plugins: dict[Literal["kube-ovn", "calico", "flannel", "custom"], PluginStatus]
    plugins_source: str
    hosted_control_plane: Literal["unavailable", "preview", "available"]
    hosted_control_plane_source: str
    upgrade: Upgrade

    _check = field_validator("third_party")(_specifier)


class Matrix(_Data):
    versions: dict[str, AcpRelease]


D = TypeVar("D", bound=BaseModel)


def load_data_file(path: Path, model: type[D], what: str) -> D:
    """A shipped data file, validated; a broken one is a packaging bug, said with its path."""
    document = load_yaml(path)
    try:
        return model.model_validate(document.data)
    except Exception as exc:
        raise InputError([document.problem((), f"invalid {what}: {exc}")]) from None


@lru_cache(maxsize=1)
def matrix() -> Matrix:
    """The shipped matrix (loaded once per process)."""
    return load_data_file(MATRIX_FILE, Matrix, "version matrix")


def known_acp_versions() -> frozenset[str]:
    return frozenset(matrix().versions)


def acp_minor(version: str) -> str:
    """'4.3.1' -> '4.3'."""
    return ".".join(version.split(".")[:2])


def release(acp_version: str) -> AcpRelease:
    """The matrix entry for an ACP version such as '4.3' or '4.3.1'."""
    return matrix().versions[acp_minor(acp_version)]


def kubernetes_version(text: str) -> Version:
    """'v1.34.5-acp.1' -> Version('1.34.5')."""
    core = re.match(r"^v?(\d+\.\d+(?:\.\d+)?)", text.strip())
    if not core:
        raise ValueError(f"{text!r} is not a Kubernetes version")
    return Version(core.group(1))


def kubernetes_minor(text: str) -> str:
    """'1.34.5' -> '1.34'."""
    version = kubernetes_version(text)
    return f"{version.major}.{version.minor}"


def satisfies(version_text: str, specifier: str) -> bool:
    """Whether a Kubernetes version lies in a PEP 440 range such as '>=1.19.0,<1.35.0'."""
    return SpecifierSet(specifier).contains(kubernetes_version(version_text), prereleases=True)
