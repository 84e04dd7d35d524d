"""Staff, departments with their response commitments, and the audit log: below tickets and the console."""
