"""``python -m frameseek.cli``: the same entry point as the ``frameseek`` console script."""

from frameseek.cli import main

main()
