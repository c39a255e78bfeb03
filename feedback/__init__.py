"""feedback: real-time 360° feedback."""

__version__ = "0.1.0"
