"""`python -m bbnode ...` is the `bbnode` command, for where the console script is not on PATH."""

import sys

from bbnode.cli import main

sys.exit(main())
