"""Run output: the controller-side collector and the report writers."""
