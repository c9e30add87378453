"""README.md's check catalogue is generated; it must match the code."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "catalogue.py"


def test_readme_catalogue_is_current() -> None:
    spec = importlib.util.spec_from_file_location("catalogue", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.README.read_text() == module.updated_readme(), "run: python scripts/catalogue.py --update"
