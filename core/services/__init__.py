"""Services shared by the CLI and the API: runtime (a config's pipeline; polls and webhook pages), feedback,
erasure and the do-not-engage list, dead letters, status, records, stats, training."""
