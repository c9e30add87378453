"""The run: what one ``acpcheck run`` (or ``pytest --acp-plan``) is given and keeps, without pytest.

Named after the run because that is what it describes, as results.json's ``run``
object and the run id do: the input read and checked before anything starts
(``inputs``), the state each process keeps while checks run (``settings``), and
what the xdist controller hands its workers (``workers``). Nothing here imports
pytest, so ``acpcheck`` can read and refuse input (exit 4) before it starts pytest,
and the pytest plugin (``acpcheck.plugin``) stays the only place that knows pytest.
"""

#: The profile of a run that names none. Here, not in ``inputs``, so that the plugin's
#: options (imported by every pytest run where acpcheck is installed) name it without
#: importing the model.
DEFAULT_PROFILE = "preinstall"
