"""The domain spec: the shipped example loads; a bad spec names the file and the key; a validated
spec written back (`--describe` writes that form) reads back the same."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from beds.errors import ConfigError
from beds.scaffold.spec import load_spec, parse_spec
from beds.scaffold.spectext import dump_spec
from beds.templates.model import FieldType
from tests.support.services import ROOT

EXAMPLE = ROOT / "docs/specs/supplier.toml"

GOOD = """
name = "parcel"
primary_key = "code"
unique = [["carrier", "ref"]]
[fields]
code = { type = "str", max_length = 12, pattern = '^[A-Z0-9]+$' }
carrier = { type = "str", choices = ["dhl", "ups"] }
ref = { type = "int", min = 1 }
weight = { type = "decimal", min = 0.01, max = 999.99, precision = 5, scale = 2 }
sent = { type = "date", required = false }
[ops]
fetch = true
list = { filters = ["carrier"] }
create = true
delete = true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_the_shipped_example_loads() -> None:
    spec = load_spec(EXAMPLE)
    assert spec.name == "supplier" and len(spec.fields) == 5
    assert spec.primary_key == "supplier_id" and spec.generated_key
    assert spec.unique == (("email",),) and spec.soft_delete and spec.audit
    assert spec.fetch_by == "supplier_id" and spec.list is not None and spec.create
    assert spec.update == ("name", "email", "credit_limit", "active") and spec.delete
    assert spec.fields["credit_limit"].type is FieldType.DECIMAL
    assert spec.fields["email"].example == "orders@acme.example"


def test_defaults_and_made_up_examples(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    assert not spec.generated_key                         # a str key is supplied by callers
    assert spec.fields["carrier"].max_length == 3         # from the longest choice
    assert spec.fields["code"].example == "AB123"          # made up, matches the pattern
    assert spec.fields["weight"].example == "100.00"
    assert spec.list is not None and spec.list.order_by == ("code",) and spec.list.limit == 50
    assert spec.update is None and not spec.soft_delete


@pytest.mark.parametrize(("change", "message"), [
    (('name = "parcel"', 'name = "Parcel"'), "name: expected a name matching [a-z][a-z0-9_]{0,39}"),
    (('name = "parcel"', 'name = "order"'), "name: 'order' is a reserved word in SQL"),
    (('primary_key = "code"', 'primary_key = "nope"'), "primary_key: 'nope' is not declared"),
    (('primary_key = "code"', 'primary_key = "weight"'), "primary_key: a key is an int or a str"),
    (('primary_key = "code"', 'primary_key = "code"\ngenerated_key = true'),
     "generated_key: only an int key can be generated"),
    (('primary_key = "code"', 'primary_key = "code"\nsoft_delete = "yes"'),
     "soft_delete: expected true or false"),
    (('[fields]', 'colour = "red"\n[fields]'), "colour: unknown key; expected one of"),
    (('type = "date"', 'type = "time"'), "fields.sent.type: expected one of 'str', 'int'"),
    (('ref = {', 'created_at = { type = "int" }\nref = {'),
     "fields.created_at: 'created_at' is a column the scaffold adds itself"),
    (('ref = {', 'select = { type = "int" }\nref = {'), "fields.select: 'select' is reserved"),
    (('ref = {', 'p_ref = { type = "int" }\nref = {'), "fields.p_ref: 'p_ref' is reserved"),
    (('min = 1 }', 'min = 1, max_length = 3 }'), "fields.ref.max_length: only str fields take"),
    (('min = 1 }', 'min = 1.5 }'), "fields.ref.min: expected an int between"),
    (('precision = 5', 'precision = 3'), "fields.weight.max: 999.99 does not fit DECIMAL(3,2)"),
    (('["dhl", "ups"]', '["dhl", 1]'), "fields.carrier.choices: expected a non-empty list of str"),
    (("'^[A-Z0-9]+$'", "'^[A-Z'"), "fields.code.pattern: not a valid regular expression"),
    (("'^[A-Z0-9]+$' }", "'^[A-Z0-9]+$', example = \"abc\" }"),
     "fields.code.example: expected string matching ^[A-Z0-9]+$, got 'abc'"),
    (("'^[A-Z0-9]+$' }", "'^Q{9}$' }"), "fields.code.example: needed: no example"),
    (('max_length = 12', 'max_length = 300'), "primary_key: 'code' is a key column"),
    (('[["carrier", "ref"]]', '["nope"]'), "unique: 'nope' is not declared in [fields]"),
    (('[["carrier", "ref"]]', '["sent"]'), "unique: 'sent' is required = false"),
    (('[["carrier", "ref"]]', '["code"]'), "unique: 'code' repeats a key"),
    (('fetch = true', 'fetch = { by = "ref" }'), "ops.fetch.by: expected the primary key or a"),
    (('fetch = true', 'fetch = "yes"'), "ops.fetch: expected true, false or a table"),
    (('create = true', 'create = { params = [] }'), "ops.create.params: unknown key"),
    (('create = true', 'upsert = true'), "ops.upsert: unknown key; expected one of: create"),
    (('filters = ["carrier"]', 'filters = ["colour"]'), "ops.list.filters: 'colour' is not"),
    (('filters = ["carrier"]', 'order_by = ["-colour"]'), "ops.list.order_by: 'colour' is not"),
    (('filters = ["carrier"]', 'limit = 0'), "ops.list.limit: expected int >= 1, got 0"),
    (('delete = true', 'delete = true\nupdate = { fields = ["code"] }'),
     "ops.update.fields: 'code' is not a declared non-key field"),
    (('delete = true', ''), "soft_delete: needs ops.delete"),
])
def test_a_bad_spec_names_the_file_and_the_key(tmp_path: Path, change: tuple[str, str],
                                               message: str) -> None:
    assert change[0] in GOOD, change
    text = GOOD.replace(*change)
    if change == ("delete = true", ""):
        text = text.replace('primary_key = "code"', 'primary_key = "code"\nsoft_delete = true')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_a_spec_without_ops_or_fields_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ops: name at least one op"):
        load_spec(write(tmp_path, GOOD.split("[ops]")[0] + "[ops]\n"))
    with pytest.raises(ConfigError, match=r"fields: a spec needs at least one field"):
        parse_spec({"name": "x", "primary_key": "id", "fields": {}, "ops": {}}, "s.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_spec(write(tmp_path, "name = "))


@pytest.mark.parametrize("source", [EXAMPLE, None])
def test_a_spec_written_back_reads_back_the_same(tmp_path: Path, source: Path | None) -> None:
    spec = load_spec(source or write(tmp_path, GOOD))
    text = dump_spec(spec, "a comment\non two lines")
    assert text.startswith("# a comment\n# on two lines\n")
    again = parse_spec(tomllib.loads(text), "again.toml", spec.path)
    assert again == spec
