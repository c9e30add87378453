"""Remediation: acpcheck performs the node provisioning steps itself, shows them first,
and can undo them.

- ``step``     — the Step protocol: a step per check, data plus a plan function (``@step``);
- ``view``     — what a plan function reads on a node (files, read-only commands);
- ``nodesteps``, ``edits`` — building blocks of node steps, and pure text edits;
- ``actions``  — how each kind of change is shown, performed, journaled and undone;
- ``journal``  — the append-only, fsync'd, hash-chained journal that makes every change
  undoable, verified whole before rollback acts on it (``records``: its fields' checks);
- ``commands`` — the named commands an undo may run (never shell text from a journal);
- ``nodelock`` — the lock on a node that one apply or rollback holds while it changes it;
- ``runner``   — dry-run, apply (verify with ``acpcheck.grading.evaluate``), rollback;
- ``refusals`` — where the docs say a change is unsupported;
- ``output``, ``cli`` — text and remediation.json; ``acpcheck remediate|rollback``.

The steps themselves live next to the checks they fix, in ``checks/node_*.py``.
"""
