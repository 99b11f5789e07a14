"""Serving helpers: an OpenAI-compatible HTTP server over a local transformers model."""
