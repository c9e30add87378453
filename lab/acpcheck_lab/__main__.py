"""``python -m acpcheck_lab`` is ``acpcheck lab``."""

import sys

from acpcheck_lab.cli import main

sys.exit(main())
