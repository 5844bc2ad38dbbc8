"""Recipes: the papers' protocols per dataset, and the comparison runner (`python -m recipes`)."""
