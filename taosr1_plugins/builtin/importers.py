"""Built-in dataset importers (implemented in data/importers.py): the generic csv, tsv, jsonl and parquet, and
the presets crowdflower, home_depot, esci, kuaisearch."""

from taosr1_plugins.hookspecs import hookimpl


@hookimpl
def register_importers(register):
    from taosr1_plugins.data.importers import BUILTIN_IMPORTERS, GENERIC_IMPORTERS

    for run in (*GENERIC_IMPORTERS, *BUILTIN_IMPORTERS):  # the generic ones first: they read your own data
        register(run.importer_name, run)
