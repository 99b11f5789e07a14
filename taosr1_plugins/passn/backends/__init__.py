"""Generation backends for pass@N sampling, one module each (registered in builtin/generation_backends.py).

Each module imports its framework (torch, vLLM, openai) only when a backend is created, so its options
model can be checked without it."""
