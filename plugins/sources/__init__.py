"""Built-in sources: each module is one plugin, registered through an entry point."""
