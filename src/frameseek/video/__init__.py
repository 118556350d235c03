"""frameseek.video."""
