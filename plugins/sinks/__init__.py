"""Built-in sinks: each module is one plugin, registered through an entry point."""
