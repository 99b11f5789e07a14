"""`python -m taosr1_plugins.cli`: the `taosr1` command without the console script."""

from . import main

main()
