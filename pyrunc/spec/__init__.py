"""config.json as a typed, validated model; the default spec; features.

`load_bundle(bundle)` is the entry point of `create` and `run`; see
pyrunc.spec.load for the rules it enforces.
"""
