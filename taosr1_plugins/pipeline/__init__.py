"""The main job: every TaoSR1 stage from raw judgements to an evaluated model, in one run directory."""
