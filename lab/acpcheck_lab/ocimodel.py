"""The lab scenario key of the private OCI registry (``ociRegistry``); what it builds is
``acpcheck_lab.ociregistry``. Kept apart so that ``acpcheck_lab.scenario`` can use it
without importing the lab's machinery (like ``lbmodel``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from acpcheck.model.plan import Spec

#: repository:tag, as the lab seeds it (lower-case path components, a plain tag).
_SEED = re.compile(r"^[a-z0-9]+([._/-][a-z0-9]+)*:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_INSTANCE = r"^[a-z][a-z0-9]{0,7}$"
#: At most this many instances: their addresses are host numbers 4.. of the direct
#: network (.1 the host, .2 the proxy, .3 the VIP holder, .10 the endpoint, .11.. nodes).
MAX_INSTANCES = 5


class LabRegistryInstance(Spec):
    """One docker-registry process, in its own namespace, serving the shared storage."""

    name: str = Field(pattern=_INSTANCE, description="a short word: part of its namespace name (acplab<N>-reg-<name>)")
    certificate: Literal["valid", "expired", "wrong-san"] = Field(
        default="valid",
        description="valid: for its address; expired: valid for its address but expired a day ago; "
        "wrong-san: current, but for another name and address only",
    )
    port: int = Field(default=5000, ge=1, le=65535, description="its TCP port (443: an external address's)")


class LabOciRegistry(Spec):
    """A real OCI registry (Debian's docker-registry, the CNCF distribution registry) with
    TLS from a lab CA and htpasswd (bcrypt) auth, seeded with small hand-made images."""

    seed: list[str] = Field(
        default_factory=lambda: ["acp/pause:3.10", "acp/kube-apiserver:v1.34.5", "acp/etcd:v3.5.21"],
        description="repository:tag images pushed at up (a tiny config and layer each)",
    )
    multi_arch: list[str] = Field(
        default_factory=list, description="seeded images that are an OCI image index (amd64 and arm64) instead"
    )
    username: str = Field(default="acplab-pull", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    instances: list[LabRegistryInstance] = Field(
        default_factory=lambda: [LabRegistryInstance(name="good")], min_length=1, max_length=MAX_INSTANCES
    )
    plan_instance: str | None = Field(
        default=None, description="the instance the lab's plan names (spec.registry.address); default: the first"
    )
    wrong_password: bool = Field(
        default=False, description="the plan's passwordFile is password-wrong (the right one, password, is next to it)"
    )
    plan_images: list[str] | None = Field(
        default=None, description="spec.registry.images of the lab's plan; default: the seeded images"
    )

    @field_validator("seed", "multi_arch")
    @classmethod
    def _seeds(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _SEED.match(item):
                raise ValueError(f"{item!r} is not repository:tag")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LabOciRegistry:
        names = [instance.name for instance in self.instances]
        if len(set(names)) != len(names):
            raise ValueError("registry instance names must be unique")
        if self.plan_instance is not None and self.plan_instance not in names:
            raise ValueError(f"planInstance {self.plan_instance!r} is not one of the instances ({', '.join(names)})")
        unknown = sorted(set(self.multi_arch) - set(self.seed))
        if unknown:
            raise ValueError(f"multiArch names images that are not seeded: {', '.join(unknown)}")
        return self

    @property
    def planned(self) -> str:
        return self.plan_instance or self.instances[0].name


__all__ = ["MAX_INSTANCES", "LabOciRegistry", "LabRegistryInstance"]
