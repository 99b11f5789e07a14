"""Evaluation: metrics, reports, the ablation table, baselines and the ranking view."""
