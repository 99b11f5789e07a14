"""A GRPO job on several nodes refuses run files on a node's own disk (issue 29 item 8): checked by the mount table
before the job is submitted, with OpenRLHF's parser reading the multi-node command once storage is shared."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from taosr1_plugins.integrations.openrlhf.shared_storage import OVERRIDE, filesystem_type, mount_type, unshared

# /proc/self/mounts as a cluster node has it: the root on a local disk, the shared storage over NFS (one mount point
# with a space, escaped as the kernel writes it), a local scratch disk inside the shared tree
MOUNTS = """\
/dev/nvme0n1p1 / ext4 rw,relatime 0 0
fileserver:/export/team /mnt/team nfs4 rw,relatime,vers=4.2 0 0
fileserver:/export/x /mnt/my\\040data nfs rw 0 0
/dev/nvme1n1 /mnt/team/scratch xfs rw 0 0
"""


@pytest.mark.parametrize(("path", "fstype"), [
    ("/mnt/team/runs/gpu_qwen/grpo", "nfs4"), ("/mnt/team", "nfs4"), ("/mnt/teamwork/run", "ext4"),
    ("/mnt/team/scratch/ckpt", "xfs"), ("/mnt/my data/run", "nfs"), ("/home/me/checkout", "ext4"),
])
def test_a_path_has_the_type_of_the_innermost_mount_holding_it(path, fstype):
    assert mount_type(path, MOUNTS) == fstype


def test_only_paths_on_a_local_filesystem_are_named():
    paths = {"the run folder": Path("/mnt/team/runs/x"), "the checkpoints": Path("/mnt/team/scratch/ckpt"),
             "the checkout": Path("/home/me/taosr1")}
    assert unshared(paths, MOUNTS) == ["the checkpoints: /mnt/team/scratch/ckpt (xfs)", "the checkout: /home/me/taosr1 (ext4)"]


def test_this_machines_filesystem_is_read_from_its_mount_table(tmp_path):
    types = {line.split()[2] for line in Path("/proc/self/mounts").read_text().splitlines()}
    assert filesystem_type(tmp_path / "not" / "made" / "yet") in types


def _context(tmp_path, launch_env):
    pytest.importorskip("openrlhf", reason="pip install --no-deps openrlhf==0.11.2 (make install does)")
    from test_grpo_recipe import _grpo_stage_context

    return _grpo_stage_context(tmp_path, launch_env)


def test_a_multi_node_job_on_local_disks_is_refused_before_submitting(tmp_path, monkeypatch):
    from taosr1_plugins.integrations.openrlhf.launch import LaunchError
    from taosr1_plugins.pipeline.stages import run_grpo

    monkeypatch.delenv(OVERRIDE, raising=False)
    if filesystem_type(tmp_path) in ("nfs", "nfs4", "lustre", "gpfs", "ceph", "beegfs"):
        pytest.skip("this machine's temporary folder is on shared storage")
    ctx = _context(tmp_path, {"DRY_RUN": "1", "NNODES": "2"})
    with pytest.raises(LaunchError, match="not on a shared filesystem") as caught:
        run_grpo(ctx)
    assert "the policy: " in str(caught.value) and "docs/gpu.md" in str(caught.value)
    assert not ctx.path("grpo", "launch.log").exists()  # nothing was submitted (nor printed)


def test_a_multi_node_job_on_shared_storage_spreads_over_the_nodes(tmp_path, monkeypatch):
    from taosr1_plugins.integrations.openrlhf.parser import openrlhf_parser
    from taosr1_plugins.pipeline.stages import DryRunStop, run_grpo

    monkeypatch.setenv(OVERRIDE, "1")  # as on a cluster whose shared filesystem is not in our list
    ctx = _context(tmp_path, {"DRY_RUN": "1", "NNODES": "2"})
    ctx.config.grpo.options["python"] = sys.executable
    with pytest.raises(DryRunStop):
        run_grpo(ctx)
    command = shlex.split(ctx.path("grpo", "launch.log").read_text())
    args = vars(openrlhf_parser().parse_args(command[command.index("--") + 4:]))
    assert args["actor.num_nodes"] == args["ref.num_nodes"] == 2
    assert args["vllm.num_engines"] * args["vllm.tensor_parallel_size"] == 2 * 8  # every GPU of both nodes
