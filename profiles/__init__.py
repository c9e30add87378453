"""The built-in profiles (YAML). This directory is shipped as ``acpcheck.profiles``."""
