"""`python -m horses_humans`: the same command as `horses-humans`."""

import sys

from .cli import main

sys.exit(main())
