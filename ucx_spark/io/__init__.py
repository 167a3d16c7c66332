"""Storage side effects live here: landing discovery, Delta reads/writes/merges, catalog."""
