"""TaoSR1's thinking relevance model recipe as plugins for LLaMA-Factory and OpenRLHF.

Importing this package stays cheap: no torch, transformers or training framework is imported here. The Python
API is exported lazily (PEP 562): ``from taosr1_plugins import RelevanceScorer`` imports the scoring code when it
is asked for, and torch only when a scorer loads its model.
"""

__version__ = "0.1.0"

# name -> module that defines it; imported on first access, so `import taosr1_plugins` stays light
_LAZY = {
    "RelevanceScorer": "taosr1_plugins.deploy.relevance_scorer",
    "Prediction": "taosr1_plugins.deploy.relevance_scorer",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
