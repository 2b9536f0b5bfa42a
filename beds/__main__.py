"""`python -m beds` is the `beds` command."""

import sys

from beds.cli import main

sys.exit(main())
