"""`python -m beds.reference NAME`: print one generated docs block (run from the project).

Layer: tooling.
"""

import sys
from pathlib import Path

from beds.reference.blocks import BLOCKS, render

if len(sys.argv) != 2 or sys.argv[1] not in BLOCKS:
    sys.exit(f"usage: python -m beds.reference NAME  (NAME: {', '.join(sorted(BLOCKS))})")
print(render(sys.argv[1], Path.cwd()))
