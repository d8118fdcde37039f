"""callmemory: persistent caller memory for AI voice bots."""

__version__ = "0.1.0"
