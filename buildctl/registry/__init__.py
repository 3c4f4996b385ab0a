"""The OCI Distribution client: read-only HTTP, auth, bounded reads, credentials."""
