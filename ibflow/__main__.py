"""``python -m ibflow``: the ``ibflow`` command line, for when the script is not on ``PATH``."""

from .cli import main

if __name__ == "__main__":
    main()
