"""``python -m liftkit.cli`` is the ``liftkit`` command."""

from liftkit.cli import main

main()
