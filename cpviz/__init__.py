"""cpviz: see concurrency and parallelism happen on your own cores."""

__version__ = "0.1.0"
