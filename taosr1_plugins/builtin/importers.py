"""Built-in dataset importers: crowdflower, home_depot, esci, kuaisearch (implemented in data/importers.py)."""

from taosr1_plugins.hookspecs import hookimpl


@hookimpl
def register_importers(register):
    from taosr1_plugins.data.importers import BUILTIN_IMPORTERS

    for run in BUILTIN_IMPORTERS:
        register(run.importer_name, run)
