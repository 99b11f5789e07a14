"""vLLM's own environment and its engines: the interpreter every vLLM path runs in and the check that it is ready
(env.py), and the one engine a process keeps open (engine.py)."""
