"""Privacy: pseudonymization and PII redaction, erasure and objection requests, the erasure audit."""
