"""DBA toolkit: a domain spec -> schema objects, a template and its docs, for review.

Layer: tooling (DBA tooling, run from the CLI only; never on the request path, never applied).

  spec.py        the spec model and its validation (errors name the file and the key)
  spec_fields.py one field of a spec: types, bounds, choices, an example the node accepts
  design.py      names and op signatures every engine generates, from the spec
  engines/       one schema generator per engine: mysql, postgres (SQL), mongodb, dynamodb (JSON),
                 behind the protocol of engines/base; the registry (engines/__init__) imports them
  template.py    templates/NAME.toml, read back through the real template loader
  docs.py        Markdown per template (also used by `beds docs` for the catalogue)
  generate.py    everything one run writes, as text
  command.py     `beds scaffold`: numbering, refusing to overwrite, writing
  describe.py    `--describe`: a spec drafted by a chat endpoint the user provides
"""

from beds.scaffold.spec import Spec, load_spec, parse_spec

__all__ = ["Spec", "load_spec", "parse_spec"]
