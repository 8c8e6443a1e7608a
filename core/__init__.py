"""socialcrm core: model, hookspecs, plugin manager, config, store, pipeline, delivery."""
