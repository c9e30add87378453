"""Typed models: the plan, check metadata, profiles, waivers and results."""
