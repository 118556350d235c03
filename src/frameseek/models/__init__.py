"""frameseek.models."""
