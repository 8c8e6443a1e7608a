"""The plugin SDK: everything a source or sink needs. Plugins import it as ``socialcrm``."""
