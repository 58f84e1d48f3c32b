"""Migration scripts, one per schema revision; see ``prefect_storage.registry.migrations``."""
