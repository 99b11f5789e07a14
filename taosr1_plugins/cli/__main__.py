"""`python -m taosr1_plugins.cli`: the `taosr1` command without the console script."""

from taosr1_plugins.cli import main

main()
