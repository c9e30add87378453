"""Report templates and the results.json schema, shipped as ``acpcheck.reports``.

- ``report.html.j2``       the report.html page (Jinja2, autoescaped), rendered by
                           ``acpcheck.report.writers.report_html``
- ``results.schema.json``  JSON Schema (draft 2020-12) of results.json, see docs/interfaces.md
- ``allure-categories.json`` the Allure categories of acpcheck's statuses, copied as
                           ``categories.json`` into ``--alluredir`` (acpcheck.report.allure)

Read them with ``importlib.resources.files("acpcheck.reports")``: that works from a
checkout and from an installed wheel alike.

Run output goes to ``reports/out/<run-id>/`` by default, which git ignores and
the wheel does not carry.
"""
