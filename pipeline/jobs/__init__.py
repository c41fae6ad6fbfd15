"""The long-running jobs behind the CLI: produce, consume, run."""
