"""Tables for the node checks (acpcheck/checks/node_*.py)."""
