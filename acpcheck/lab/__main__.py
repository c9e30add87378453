"""``python -m acpcheck.lab`` is ``acpcheck lab``."""

import sys

from acpcheck.lab.cli import main

sys.exit(main())
