"""Sample landing data in the SPEC section 3 format (for demos, tests and benchmarks)."""
