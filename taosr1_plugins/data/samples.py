"""Paths of the data files shipped inside the package (only the Apache-2.0 ESCI sample)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def esci_sample_path() -> Path:
    """The bundled 200-row ESCI sample (CSV, gzip), importable with the `esci` importer."""
    resource = files("taosr1_plugins") / "data" / "esci_sample" / "esci_200_with_titles.csv.gz"
    # Installed as a wheel or editable, package data is a real file; a zipped install is not supported.
    path = Path(str(resource))
    if not path.is_file():
        raise FileNotFoundError(f"the bundled ESCI sample is missing: {path}")
    return path
