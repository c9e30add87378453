"""acpcheck: checks for Alauda Container Platform clusters, as a pytest plugin.

The public API for writing checks::

    from acpcheck import Scope, Severity, When, check, fail, fail_if, warn, manual, skip
"""

from acpcheck.model.check import Scope, Severity, When, check, fail, fail_if, manual, skip, warn

__version__ = "0.1.0"
__all__ = ["Scope", "Severity", "When", "check", "fail", "fail_if", "manual", "skip", "warn", "__version__"]
