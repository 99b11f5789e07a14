"""Training backends: the one seam between the main job's training stages and a framework (see backend.py)."""
