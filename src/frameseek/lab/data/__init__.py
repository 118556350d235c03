"""frameseek.lab.data."""
