"""Deployment: post-CoT scoring, CumPT tiers, calibration, scorers per backend and the servers."""
