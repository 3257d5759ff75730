"""Built-in plugins: generic loaders, model families and metrics, registered through the same manager as third-party plugins."""
