"""complaw: compression laws for LLMs."""
__version__ = "0.1.0"
