"""The built-in commands that live in their own modules.

Each module is a plugin: setup.cfg lists it in the ``socialcrm`` entry-point group (``commands.dlq =
socialcrm.core.cli.commands.dlq``) and its ``register_commands(cli)`` hook implementation adds its
commands (or command group), exactly as a third-party plugin adds its own. Keeping them apart keeps
``core/cli/main.py`` small and lets each capability own its commands.
"""
