"""Recipes that build the project's own models (not part of the pure `groundloop` package)."""
