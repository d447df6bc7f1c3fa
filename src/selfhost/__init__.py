"""selfhost: measured answers for people who run large language models on their own hardware."""

__version__ = "0.1.0"
__all__ = ["__version__"]
