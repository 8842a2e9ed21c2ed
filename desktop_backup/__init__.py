"""Desktop Backup: the Qt-free core of the billing backup console."""

__version__ = "0.1.0"
