"""``python -m wsg``: the command line (see :mod:`wsg.cli`)."""
from wsg.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
