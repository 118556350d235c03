"""frameseek.data."""
