"""`taosr1 patch`: apply the minimal upstream patches in patches/ to installed frameworks."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command("llamafactory")
def llamafactory(
    check: bool = typer.Option(False, "--check", help="Only report the state; exit 1 unless patched."),
    revert: bool = typer.Option(False, "--revert", help="Restore the pristine llamafactory files."),
) -> None:
    """Patch the installed llamafactory 0.9.5: load `llamafactory.plugins` entry points, lazy torchaudio."""
    from taosr1_plugins.integrations.llamafactory.patching import PatchState, installed_llamafactory_root
    from taosr1_plugins.integrations.llamafactory.patching import patch_installed

    root = installed_llamafactory_root()  # a PatchError (not installed, another version, ...) is status 2
    before = patch_installed(revert=revert, check=check)
    want = PatchState.UNAPPLIED if revert else PatchState.APPLIED
    for path, state in before.items():
        if check:
            typer.echo(f"{state}: {root / path}")
        elif state is want:
            typer.echo(f"already {want}: {root / path}")
        else:
            typer.echo(f"{'reverted' if revert else 'patched'}: {root / path}")
    if check and any(state is not PatchState.APPLIED for state in before.values()):
        raise typer.Exit(1)
