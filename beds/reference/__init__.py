"""Reference pages generated from the code, so the documentation site never goes stale.

Layer: tooling (the docs build). Reads the settings model, the template loader, the argparse
parser and the error catalogue; nothing in the runtime imports this package. The mkdocs hook
`docs/_hooks.py` puts each generated table where a page says `<!-- beds:generated NAME -->`.

    python -m beds.reference NAME     prints one generated block (see `BLOCKS`)
"""

from beds.reference.blocks import BLOCKS, render

__all__ = ["BLOCKS", "render"]
