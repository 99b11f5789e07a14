"""CoT teachers, one module each (registered in builtin/teachers.py); the protocol is cot/teachers.py.

Each module imports its framework (torch, openai) only when a teacher is created, so its options model can
be checked without it."""
