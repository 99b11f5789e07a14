"""Stage 2, pass@N and DPO: N sampled responses per prompt, their difficulty, and preference pairs."""
