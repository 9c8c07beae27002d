"""pytest plugin: memory limits and leak checks (see issue 6)."""
