"""Every template key, with the type, default and constraint the template loader applies.

Layer: tooling. Runs `beds.templates.loader` over the shipped templates with a `RecordingTable`
(the same approach as config_keys), plus the enums the loader accepts.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from beds.config import OpKind
from beds.errors import TemplateError
from beds.reference.markdown import default_of, table
from beds.reference.recording import Recorder, RecordingTable
from beds.templates.loader import MAX_BULK_ROWS, template_from_table
from beds.templates.model import FieldType, OpTarget

_ALL, _CALL, _VIEW, _BULK = "every op", "procedure, function", "view", "bulk"
DESCRIPTIONS = {
    "name": ("", "The template name; must equal the file name"),
    "datasource": ("", "A `[datasources.NAME]` of the config"),
    "description": ("", "Shown in `beds docs` and the catalogue"),
    "broker": ("", "Pin every op to this broker (its queue), whatever kinds say"),
    "allow": ("", "AMQP users that may call its ops (absent = anyone)"),
    "fields.NAME.type": ("", "The JSON type a value must have"),
    "fields.NAME.required": ("", "A caller must send it (unless the op lists it in `optional`)"),
    "fields.NAME.min": ("", "Lowest value (int, float, decimal)"),
    "fields.NAME.max": ("", "Highest value (int, float, decimal)"),
    "fields.NAME.max_length": ("", "Most characters (str)"),
    "fields.NAME.pattern": ("", "Regular expression the whole value must match (str)"),
    "fields.NAME.choices": ("", "A non-empty list: the only values accepted"),
    "fields.NAME.protected": ("", "Never returned in a reply, logged or echoed in an error"),
    "fields.NAME.description": ("", "Shown in `beds docs`"),
    "ops.NAME.kind": (_ALL, "Decides the broker: `read`, `write` (runs in a transaction) or "
                            "`bulk`"),
    "ops.NAME.procedure": ("procedure", "`CALL name(?, …)`: exactly one of procedure, view, function"),
    "ops.NAME.view": (_VIEW, "`SELECT … FROM name WHERE <filters> ORDER BY … LIMIT … OFFSET …`"),
    "ops.NAME.function": ("function", "`SELECT name(?, …)`: data is `[{\"value\": …}]`"),
    "ops.NAME.params": (_CALL, "IN parameters, in order; each a declared field"),
    "ops.NAME.optional": (_CALL, "Params a caller may omit (bound as NULL)"),
    "ops.NAME.out": ("procedure", "OUT parameters after the IN ones, returned in `out`"),
    "ops.NAME.filters": (_VIEW, "Columns a caller may filter on (equality); declared fields"),
    "ops.NAME.order_by": (_VIEW, "Sort columns; `-col` for descending"),
    "ops.NAME.limit": (_VIEW, "Default and maximum page size"),
    "ops.NAME.broker": (_ALL, "Pin this op to a broker"),
    "ops.NAME.allow": (_ALL, "AMQP users that may call it (a bulk op defaults to its write "
                             "op's list)"),
    "ops.NAME.idempotency_key": (_CALL, "A param filled from the AMQP `message_id` when "
                                        "omitted; the procedure gets it scoped by op and caller "
                                        "and stores the outcome per key"),
    "ops.NAME.on_repeat": ("write, bulk", "For a write without `idempotency_key`: what a second "
                                          "run does and why that is acceptable"),
    "ops.NAME.description": (_ALL, "Shown in `beds docs`"),
    "ops.NAME.consistency": (_ALL, "Read ops: `\"any\"` (default: a healthy read replica may "
                                   "serve it) or `\"primary\"` (always the primary); "
                                   "see replicas.md"),
    "ops.NAME.of": (_BULK, "The write op it batches (its routine, params, out)"),
    "ops.NAME.max_rows": (_BULK, f"Most rows per request (at most {MAX_BULK_ROWS})"),
    "warehouse.key": ("", "Rows move in key order; a batch resumes after its last key"),
    "warehouse.age_field": ("", "A date/datetime field every extracted row carries"),
    "warehouse.older_than": ("", "Age of rows to move: seconds, or a number with s/m/h/d "
                                 "(`\"30d\"`)"),
    "warehouse.batch": ("", "Rows per round (1 to 10000)"),
    "warehouse.every": ("", "How often the mover runs (seconds or s/m/h/d; first run at start)"),
    "warehouse.extract": ("", "Read procedure op here: (age_seconds, after_key, batch_size)"),
    "warehouse.purge": ("", "Write procedure op here: (keys, age_seconds)"),
    "warehouse.load": ("", "`template.op` of the COOL side: (rows) -> the keys it holds"),
}
"""Template key -> (which ops take it, meaning). A key the loader reads that is missing here
fails the docs build."""

_SHOWN = {
    "ops.NAME.kind": "**required**",     # read with a default first, to tell bulk ops apart
    "ops.NAME.procedure": "one of three", "ops.NAME.view": "one of three",
    "ops.NAME.function": "one of three",
}
_TYPE_SHOWN = {"ops.NAME.kind": "string", "fields.NAME.choices": "list",
               "warehouse.older_than": "duration", "warehouse.every": "duration"}
_HEADINGS = {"": "Top level", "fields.NAME": "`[fields.NAME]`", "ops.NAME": "`[ops.NAME]`",
             "warehouse": "`[warehouse]` (segundo's HOT template)"}


def record(directory: Path) -> Recorder:
    """Load every template under `directory` (subfolders too) and note the keys read."""
    recorder = Recorder()
    for path in sorted(directory.rglob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        template_from_table(RecordingTable(data, recorder, error=TemplateError, source=str(path)),
                            path)
    return recorder


def template_reference(directory: Path) -> str:
    recorder = record(directory)
    missing = [path for path in recorder.keys if path not in DESCRIPTIONS]
    if missing:
        raise ValueError("template keys without a description (add them to "
                         f"beds/reference/template_format.py DESCRIPTIONS): {', '.join(missing)}")
    sections = []
    for name in sorted(recorder.tables(), key=lambda t: list(_HEADINGS).index(t)):
        ops = name == "ops.NAME"
        rows = []
        for doc in recorder.in_table(name):
            applies, meaning = DESCRIPTIONS[doc.path]
            row = [f"`{doc.key}`", _TYPE_SHOWN.get(doc.path, doc.kind),
                   default_of(doc, _SHOWN), doc.constraint or "any"]
            rows.append([*row, applies, meaning] if ops else [*row, meaning])
        header = ["key", "type", "default", "accepts", *(["ops"] if ops else []), "meaning"]
        sections.append(f"### {_HEADINGS[name]}\n\n{table(header, rows)}")
    enums = table(["name", "values"], [
        ["field `type`", ", ".join(f"`{t.value}`" for t in FieldType)],
        ["op `kind`", ", ".join(f"`{k.value}`" for k in OpKind)],
        ["op target", ", ".join(f"`{t.value}`" for t in OpTarget)],
    ])
    return "\n\n".join([*sections, "### Values\n\n" + enums])
