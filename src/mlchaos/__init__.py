"""mlchaos: chaos engineering for machine-learning services."""

__version__ = "0.1.0"
__all__ = ["__version__"]
