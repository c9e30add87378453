"""Report templates and the results.json schema, shipped as ``acpcheck.reports``.

Run output goes to ``reports/out/<run-id>/`` by default, which git ignores and
the wheel does not carry.
"""
