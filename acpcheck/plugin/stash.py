"""Where the plugin keys its state on pytest's objects (no hooks: not a plugin itself).

Imported by the parts of the plugin that every pytest run loads (``fixtures``), so
it names the model's types for the type checker only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from acpcheck.model.check import CheckMeta
    from acpcheck.model.plan import Node
    from acpcheck.run.settings import Settings

#: the run's settings, on the config of a run with --acp-plan (absent otherwise: the plugin is inert)
SETTINGS: pytest.StashKey[Settings] = pytest.StashKey()
#: a check item's check, set at collection (pytest_collection_modifyitems): only check items have it
META: pytest.StashKey[CheckMeta] = pytest.StashKey()
#: a check item's target (``node:w1``, ``cluster:…``), set with META
TARGET: pytest.StashKey[str] = pytest.StashKey()
#: a CheckItem's node (None for a check that is not per node)
NODE_PARAM: pytest.StashKey[Node | None] = pytest.StashKey()


#: a check item's cluster: the plan's name, or the fleet member it is about (set at collection)
CLUSTER: pytest.StashKey[str] = pytest.StashKey()


def settings_of(config: pytest.Config) -> Settings | None:
    return config.stash.get(SETTINGS, None)


def is_check_item(item: pytest.Item) -> bool:
    return META in item.stash
