"""`python -m beds` is the `beds` command.

Layer: interface.
"""

import sys

from beds.cli import main

sys.exit(main())
