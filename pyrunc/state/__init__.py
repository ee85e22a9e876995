"""Container state: the on-disk store, /proc checks and Go-style JSON."""
