"""`python -m horses_humans`: the same command as `horses-humans`."""

import sys

from .cli.main import main

if __name__ == "__main__":  # importing the module (as the import tests do) runs nothing
    sys.exit(main())
