"""The release in order: plan, build, verification, gate and tags, GitOps step, release record."""
