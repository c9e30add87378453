"""``python -m acpcheck.remediation remediate|rollback …`` (the same as ``acpcheck remediate|rollback``)."""

import sys

from acpcheck.remediation.cli import main

sys.exit(main())
