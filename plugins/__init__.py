"""Built-in plugins. They are found through the ``socialcrm`` entry-point group, like any other."""
