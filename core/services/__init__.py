"""Services shared by the CLI and the API (feedback, erasure, dead letters, training)."""
