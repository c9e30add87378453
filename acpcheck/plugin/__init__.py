"""The pytest plugin (entry point ``acpcheck``; ``-p acpcheck.plugin``, ``-p no:acpcheck``).

Inert unless ``--acp-plan`` is given: installing acpcheck must not change anyone
else's pytest run. With a plan it

- collects ``@check`` functions (``check_*``) and the first-party pack,
- selects them by profile, SKIPs the ones that do not apply to the plan,
- gathers the evidence the selected checks need once per run on the controller
  (``acpcheck.sources``), or replays it (``--acp-facts``), and hands each check
  the evidence named by its parameters (``node``, ``nodes``, …): directly for
  ``CheckItem``s, through fixtures of the same names for checks that also use
  fixtures of their own,
- makes one item per check and node for node checks (with ``xdist_group(<node>)``
  so ``--dist loadgroup`` keeps one node on one worker),
- grades each outcome through ``acpcheck.grading`` on the report,
- and, on the controller only, writes results.json, junit.xml, summary.md and
  report.html (see ``acpcheck.report``).

This module is only the entry point; the hooks are in its submodules, one concern
each. pytest imports the entry point and its two light parts (``options``,
``fixtures``) on every run where acpcheck is installed; the parts that import the
model are registered by ``options`` only on a run with ``--acp-plan``
(``options.RUN_PARTS``), so a run without a plan does not pay for them. What a run
is (its input, settings and evidence, what xdist workers are sent) is in
``acpcheck.run``, which does not import pytest.
"""

#: The plugin's parts loaded on every run, each registered as a plugin of its own
#: when pytest registers this module: pytest's own pytester does the same
#: (``pytest_plugins = ["pytester_assertions"]``), and it keeps one entry point, so
#: ``-p no:acpcheck`` still turns all of them off (a blocked module is never imported,
#: nor its list read).
pytest_plugins = [
    "acpcheck.plugin.options",  # --acp-* options, markers; with --acp-plan, registers the other parts
    "acpcheck.plugin.fixtures",  # plan and params fixtures (they say a plan is needed when none is given)
]
