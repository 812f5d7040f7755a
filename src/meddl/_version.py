"""The package version, importable without importing the package's API (which names the layers above)."""

__version__ = "0.1.0"
