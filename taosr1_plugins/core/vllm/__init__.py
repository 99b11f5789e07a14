"""vLLM's own environment: the interpreter that runs every vLLM path, and the check that it is ready (env.py)."""
