"""Several Ray nodes read and write the same run: its files must lie on storage every node mounts.

With more than one node, the trainer (on any node) loads the prompt files, every vLLM engine and actor reads
the policy, the reward file and ``reward.yaml``, the workers import ``taosr1_plugins`` from the checkout, and
each node writes its shards of the checkpoints and of the final model. On a node-local disk the other nodes
find nothing (or write their shards where resume and the next stage never look). The paths are checked by the
filesystem type of their mount (``/proc/self/mounts``) before the job is submitted; a shared filesystem of a
type not listed here is accepted with ``TAOSR1_SHARED_STORAGE=1`` after checking it by hand.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# network and cluster filesystems (FUSE ones appear as fuse.NAME)
SHARED_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "beegfs", "ceph", "glusterfs", "panfs", "wekafs", "afs",
    "orangefs", "fuse.glusterfs", "fuse.cephfs", "fuse.juicefs", "fuse.weka", "fuse.sshfs", "fuse.gcsfuse",
})
OVERRIDE = "TAOSR1_SHARED_STORAGE"


def _unescape(field: str) -> str:
    # /proc/mounts writes a space, tab, newline and backslash in a mount point as octal escapes
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mount_type(path: str, mounts: str) -> str:
    """The filesystem type of the innermost mount in ``mounts`` (``/proc/mounts`` lines) holding absolute ``path``."""
    best, fstype = "", "unknown"
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = _unescape(fields[1])
        inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):  # the last of equal mount points is the one on top
            best, fstype = mount_point, fields[2]
    return fstype


def filesystem_type(path: Path) -> str:
    """The type of the filesystem ``path`` (or, not created yet, its nearest existing folder) lies on here."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return mount_type(str(path.resolve()), Path("/proc/self/mounts").read_text())


def unshared(paths: Mapping[str, Path], mounts: str | None = None) -> list[str]:
    """'what: path (fstype)' for every path not on a shared filesystem type (``mounts``: another node's table)."""
    found = []
    for what, path in paths.items():
        fstype = filesystem_type(path) if mounts is None else mount_type(str(path), mounts)
        if fstype not in SHARED_TYPES:
            found.append(f"{what}: {path} ({fstype})")
    return found


def require_shared_storage(paths: Mapping[str, Path], nodes: int) -> None:
    """Refuse (a LaunchError) a job of several nodes whose files lie on a node's own disk."""
    from taosr1_plugins.integrations.openrlhf.launch import LaunchError

    if nodes <= 1 or os.environ.get(OVERRIDE) == "1":
        return
    local = unshared(paths)
    if local:
        raise LaunchError(
            f"a GRPO job on {nodes} nodes reads and writes these on every node, but they are not on a shared "
            f"filesystem ({', '.join(sorted(SHARED_TYPES)[:6])}, ...): " + "; ".join(local)
            + f". Put the checkout, the run folder and the OpenRLHF environment on storage every node mounts at "
            f"the same path (docs/gpu.md, 'Several nodes'), or set {OVERRIDE}=1 if this filesystem is shared"
        )
