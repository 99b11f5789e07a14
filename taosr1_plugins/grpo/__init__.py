"""Stage 3, GRPO: the relevance reward, difficulty-based dynamic sampling and the GRPO settings."""
