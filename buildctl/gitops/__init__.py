"""Step 6: byte-exact image edits in the GitOps repository, one commit, a safe push."""
