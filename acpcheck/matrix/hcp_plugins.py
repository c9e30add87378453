"""The cluster plugins a hosted-control-plane management cluster needs (``hcp_plugins.yaml``),
each identified by the CustomResourceDefinitions it serves, each row with its source.

ACP-HCP-004 (checks/hcp.py) compares them with the CRDs the ``cluster`` source read from the
management cluster (``acpcheck.sources.cluster.CRDS``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from acpcheck.matrix import load_data_file

HCP_PLUGINS_FILE = Path(__file__).with_name("hcp_plugins.yaml")
#: A CRD name: <plural>.<group>, lower case (what metadata.name of a CRD must be).
CRD_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


class HcpPlugin(_Data):
    """One cluster plugin and the CRDs whose being served tells it is installed."""

    plugin: str = Field(min_length=1)
    crds: list[Annotated[str, Field(pattern=CRD_NAME)]] = Field(min_length=1)
    source: str = Field(pattern=r"^https://")
    note: str = ""


class HcpPluginsData(_Data):
    plugins: list[HcpPlugin] = Field(min_length=1)


@lru_cache(maxsize=1)
def hcp_plugins() -> tuple[HcpPlugin, ...]:
    """The rows of ``hcp_plugins.yaml``, validated (a bad row is an error naming the file)."""
    return tuple(load_data_file(HCP_PLUGINS_FILE, HcpPluginsData, "hosted control plane plugins").plugins)
