"""landing -> bronze + quarantine: parse, check the contract, dedupe, redact, pseudonymize."""
