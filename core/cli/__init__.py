"""The ``socialcrm`` command line."""
