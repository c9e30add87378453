"""``python -m acpcheck`` is the ``acpcheck`` command."""

import sys

from acpcheck.cli import main

sys.exit(main())
