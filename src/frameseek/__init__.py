"""frameseek: find the moments in a video that match a sentence."""

__version__ = "0.1.0"
