"""Deployment adapters: label-probability scorers per inference backend (registered in builtin/deployment.py).

Each factory declares its ``options_model`` and imports its framework only when called."""
