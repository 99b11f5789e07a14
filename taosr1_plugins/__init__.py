"""TaoSR1's thinking relevance model recipe as plugins for LLaMA-Factory and OpenRLHF.

Importing this package stays cheap: no torch, transformers or training framework is imported here.
"""

__version__ = "0.1.0"
