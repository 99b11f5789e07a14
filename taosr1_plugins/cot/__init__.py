"""Stage 1, SFT with chain-of-thought: teacher reasoning traces, retrieval grounding and level balance."""
