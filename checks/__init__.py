"""acpcheck's first-party checks, one module per component, imported as ``acpcheck.checks``.

This top-level directory is mapped into the wheel as the ``acpcheck.checks``
package (see pyproject.toml). Helpers that several check modules need live in
``support``; a check module never imports another check module.
"""
