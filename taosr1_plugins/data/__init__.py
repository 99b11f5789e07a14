"""Stage 0, the data: raw judgement files imported, checked and split into records."""
