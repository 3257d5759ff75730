"""Exceptions users see; light to import."""

from __future__ import annotations

__all__ = ["PluginError", "RegistryError"]


class PluginError(RuntimeError):
    """A plugin could not be loaded or validated (raised in strict mode, or on use)."""


class RegistryError(LookupError):
    """A name that nothing registered, or whose plugin is broken."""
