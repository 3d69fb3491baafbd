"""diffing package."""
