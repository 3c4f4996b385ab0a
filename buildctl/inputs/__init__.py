"""Input digests: what decides a service's image, hashed, so an unchanged service is reused instead
of rebuilt (pipeline/reuse.py decides; this package only computes)."""
