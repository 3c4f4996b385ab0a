"""One module per CLI verb. Each returns a result object; buildctl.output.render renders it."""
