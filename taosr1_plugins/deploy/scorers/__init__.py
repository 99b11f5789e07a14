"""Deployment adapters: label-probability scorers per inference backend (registered in builtin/deployment.py)."""
