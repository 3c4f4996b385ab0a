"""Signing verified releases (cosign)."""
