"""``python -m taosr1_plugins.integrations.llamafactory.train RECIPE.yaml [key=value ...]``

LLaMA-Factory's ``run_exp`` with taosr1's converters registered and our callbacks added. It reads the
recipe and overrides from ``sys.argv`` exactly like ``llamafactory-cli train`` (``read_args``). Like
``llamafactory-cli train`` it starts itself again under torchrun when more than one GPU is visible or
``FORCE_TORCHRUN`` is set (``NPROC_PER_NODE``, ``NNODES``, ``NODE_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``
as LLaMA-Factory reads them): ``run_exp`` alone is one process, world size 1, so a 7B ZeRO-3 recipe would put
the whole model and its Adam states on one GPU. Unlike ``llamafactory-cli`` it needs no launcher patch to
find our converters (LLaMA-Factory 0.9.5 still needs the patch for its unconditional ``import torchaudio``
when torchaudio is absent).
"""

from __future__ import annotations

import os
import subprocess
import sys

MODULE = "taosr1_plugins.integrations.llamafactory.train"


def torchrun_command(argv: list[str]) -> list[str] | None:
    """The torchrun command that runs this module on every GPU of the node, as ``llamafactory-cli train``
    builds its own; None when one process is right (one device, or already a torchrun rank)."""
    if "LOCAL_RANK" in os.environ:  # torchrun sets it in every rank it starts
        return None
    from llamafactory.extras.misc import find_available_port, get_device_count, is_env_enabled

    if not (is_env_enabled("FORCE_TORCHRUN") or get_device_count() > 1):
        return None
    # torch.distributed.run is torchrun's own module: the launching interpreter's, whatever PATH holds
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes", os.getenv("NNODES", "1"), "--node_rank", os.getenv("NODE_RANK", "0"),
        "--nproc_per_node", os.getenv("NPROC_PER_NODE", str(max(get_device_count(), 1))),
        "--master_addr", os.getenv("MASTER_ADDR", "127.0.0.1"),
        "--master_port", os.getenv("MASTER_PORT", str(find_available_port())),
        "-m", MODULE, *argv,
    ]


def main(argv: list[str] | None = None) -> None:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    if len(sys.argv) < 2:
        sys.exit(__doc__)

    command = torchrun_command(sys.argv[1:])
    if command is not None:
        sys.exit(subprocess.run(command).returncode)

    from llamafactory.train.tuner import run_exp

    from taosr1_plugins.integrations.llamafactory.callbacks import StopOnNonFiniteLoss
    from taosr1_plugins.integrations.llamafactory.plugin import register

    register()
    run_exp(callbacks=[StopOnNonFiniteLoss()])


if __name__ == "__main__":
    main()
