"""Search of a caller's whole archive (turns and call summaries) for what they just said."""
