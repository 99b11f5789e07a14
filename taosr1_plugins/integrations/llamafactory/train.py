"""``python -m taosr1_plugins.integrations.llamafactory.train RECIPE.yaml [key=value ...]``

LLaMA-Factory's ``run_exp`` with taosr1's converters registered and our callbacks added. It reads the
recipe and overrides from ``sys.argv`` exactly like ``llamafactory-cli train`` (``read_args``), and it
works under ``torchrun -m taosr1_plugins.integrations.llamafactory.train ...`` since every rank runs
this module. Unlike ``llamafactory-cli`` it needs no launcher patch to find our converters (LLaMA-Factory
0.9.5 still needs the patch for its unconditional ``import torchaudio`` when torchaudio is absent).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    if len(sys.argv) < 2:
        sys.exit(__doc__)

    from llamafactory.train.tuner import run_exp

    from taosr1_plugins.integrations.llamafactory.callbacks import StopOnNonFiniteLoss
    from taosr1_plugins.integrations.llamafactory.plugin import register

    register()
    run_exp(callbacks=[StopOnNonFiniteLoss()])


if __name__ == "__main__":
    main()
