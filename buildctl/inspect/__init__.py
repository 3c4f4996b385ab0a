"""Verification of pushed images (every ELF, loader, shebang) and Dockerfile lint."""
