"""The Docker engine and buildx: engine facts, builders and their nodes, binfmt, builds, retries."""
