"""One module per CLI verb. Each returns a result object; buildctl.report renders it."""
