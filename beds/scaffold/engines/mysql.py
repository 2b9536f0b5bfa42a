"""MariaDB / MySQL schema file for a spec, in the style of schema/mysql/ (see 040_procedures.sql,
060_idempotency.sql and 090_grants.sql): tables, a SQL SECURITY DEFINER view, procedures between
DELIMITER $$ lines, then grants for ${app_user}.

Layer: tooling. Pure text out.
"""

from __future__ import annotations

from beds.config import Engine
from beds.scaffold import design
from beds.scaffold.design import OpDesign
from beds.scaffold.engines.base import Existing
from beds.scaffold.engines.common import (
    PARAMS_MISMATCH,
    check_constraints,
    header,
    is_long_text,
    one_line,
)
from beds.scaffold.spec import Spec, SpecField
from beds.templates.model import FieldType, OpTarget

_REQUEST_LOG = """\
-- Idempotency keys of the write procedures: the table of 060_idempotency.sql (which creates it
-- first when the example schema is applied too; repeated here so this file also applies alone).
CREATE TABLE IF NOT EXISTS request_log (
    request_id  VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
    op          VARCHAR(64) NOT NULL,
    result_id   BIGINT NULL,
    created_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    params_hash CHAR(64) CHARACTER SET ascii NULL
) ENGINE = InnoDB;
ALTER TABLE request_log ADD COLUMN IF NOT EXISTS params_hash CHAR(64) CHARACTER SET ascii NULL;"""


def literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def column_type(field: SpecField) -> str:
    if field.type is FieldType.STR:
        return "TEXT" if is_long_text(field) else f"VARCHAR({field.max_length})"
    return {FieldType.INT: "INT", FieldType.BOOL: "BOOL", FieldType.DATE: "DATE",
            FieldType.DATETIME: "DATETIME"}.get(field.type) or \
        f"DECIMAL({field.precision},{field.scale})"


def param_type(field: SpecField) -> str:
    if field.type is FieldType.STR:
        # Explicit, so a parameter does not depend on the database's default character set.
        return f"VARCHAR({field.max_length}) CHARACTER SET utf8mb4"
    return column_type(field)


class MysqlGenerator:
    engine = Engine.MYSQL
    suffix = ".sql"

    def adapt(self, spec: Spec) -> Spec:
        return spec

    def doc_note(self, spec: Spec) -> str:
        return ""

    def render(self, spec: Spec, existing: Existing | None = None) -> str:
        parts = ["\n".join(header(spec, "mysql"))]
        if spec.writes:
            parts.append(_REQUEST_LOG)
        parts.append(_table(spec))
        if spec.audit:
            parts.append(_audit_table(spec))
        parts.append(_view(spec))
        routines = [_routine(spec, op) for op in design.ops(spec)
                    if op.target is OpTarget.PROCEDURE]
        if routines:
            parts.append("DELIMITER $$\n\n" + "\n\n".join(routines) + "\n\nDELIMITER ;")
        parts.append(_grants(spec))
        return "\n\n".join(parts) + "\n"


def _table(spec: Spec) -> str:
    key = spec.key
    rows = []
    for field in spec.fields.values():
        null = "NOT NULL" if field.required else "NULL"
        auto = " AUTO_INCREMENT" if field is key and spec.generated_key else ""
        rows.append(f"{field.name:<14} {column_type(field)} {null}{auto}")
    rows += ["created_at     DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP",
             "updated_at     DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP"]
    if spec.soft_delete:
        rows.append("deleted_at     DATETIME NULL")
    rows.append(f"PRIMARY KEY ({key.name})")
    rows += [f"UNIQUE KEY {design.index_name('uq', spec.name, cols)} ({', '.join(cols)})"
             for cols in spec.unique]
    rows += [f"KEY {design.index_name('idx', spec.name, cols)} ({', '.join(cols)})"
             for cols in design.index_columns(spec)]
    rows += [f"CONSTRAINT {name} CHECK ({condition})"
             for name, condition in check_constraints(spec, literal)]
    body = ",\n    ".join(rows)
    return (f"CREATE TABLE IF NOT EXISTS {spec.name} (\n    {body}\n"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;")


def _audit_table(spec: Spec) -> str:
    table, key = design.audit_table(spec), spec.key
    return (f"-- One row per write: the row after create/update, before delete.\n"
            f"CREATE TABLE IF NOT EXISTS {table} (\n"
            f"    audit_id    BIGINT NOT NULL AUTO_INCREMENT,\n"
            f"    {key.name:<11} {column_type(key)} NOT NULL,\n"
            f"    action      VARCHAR(6) NOT NULL,\n"
            f"    request_id  VARCHAR(64) CHARACTER SET ascii NOT NULL,\n"
            f"    changed_at  DATETIME NOT NULL,\n"
            f"    row_data    JSON NOT NULL,\n"
            f"    PRIMARY KEY (audit_id),\n"
            f"    KEY {design.index_name('idx', table, (key.name,))} ({key.name}, changed_at),\n"
            f"    CONSTRAINT {design.index_name('ck', table, ('action',))} "
            f"CHECK (action IN ('create', 'update', 'delete'))\n"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;")


def _view(spec: Spec) -> str:
    columns = ",\n".join(f"    t.{c:<14} AS {c}" for c in design.view_columns(spec))
    where = "\nWHERE t.deleted_at IS NULL" if spec.soft_delete else ""
    return ("-- What callers read (SELECT is granted on this view, never on the table).\n"
            "CREATE OR REPLACE\n    ALGORITHM = MERGE\n    SQL SECURITY DEFINER\n"
            f"VIEW {design.view_name(spec)} AS\nSELECT\n{columns}\n"
            f"FROM {spec.name} AS t{where};")


def _routine(spec: Spec, op: OpDesign) -> str:
    params = [("IN", name, "VARCHAR(64) CHARACTER SET ascii" if name == design.REQUEST_ID
               else param_type(spec.fields[name])) for name in op.params]
    params += [("OUT", name, "INT" if name != spec.primary_key else param_type(spec.key))
               for name in op.out]
    if len(params) == 1:
        signature = "(IN p_{1} {2})".format(*params[0])
    else:
        width = max(len(name) for _, name, _ in params) + 2
        signature = "(\n    " + ",\n    ".join(
            f"{mode:<3} {'p_' + name:<{width}} {kind}" for mode, name, kind in params) + ")"
    access = "READS SQL DATA" if op.name == "fetch" else "MODIFIES SQL DATA"
    body = _fetch_body(spec, op) if op.name == "fetch" else _write_body(spec, op)
    return (f"-- {one_line(op.description)}\n"
            f"CREATE OR REPLACE PROCEDURE {op.object_name}{signature}\n"
            f"    {access}\n    SQL SECURITY DEFINER\n"
            f"    COMMENT {literal(one_line(f'BEDS {spec.name}.{op.name}: {op.description}'))}\n"
            f"BEGIN\n{body}\nEND$$")


def _fetch_body(spec: Spec, op: OpDesign) -> str:
    columns = ", ".join(design.view_columns(spec))
    by = op.params[0]
    return (f"    SELECT {columns}\n      FROM {design.view_name(spec)}\n"
            f"     WHERE {by} = p_{by};")


def _live(spec: Spec) -> str:
    return " AND deleted_at IS NULL" if spec.soft_delete else ""


def _write_body(spec: Spec, op: OpDesign) -> str:
    result = f"p_{op.out[0]}" if op.out else None
    stored = f"params_hash, result_id INTO v_stored, {result}" if result else \
        "params_hash INTO v_stored"
    work = {"create": _create, "update": _update, "delete": _delete}[op.name](spec, op)
    if result:
        work.append(f"UPDATE request_log SET result_id = {result} "
                    "WHERE request_id = p_request_id;")
    work_text = "\n".join(f"        {line}" for line in "\n".join(work).splitlines())
    hashed = ", ".join(f"p_{n}" for n in op.params if n != design.REQUEST_ID)
    return f"""\
    DECLARE v_repeat BOOL DEFAULT FALSE;
    DECLARE v_hash CHAR(64) CHARACTER SET ascii DEFAULT SHA2(JSON_ARRAY({hashed}), 256);
    DECLARE v_stored CHAR(64) CHARACTER SET ascii;
    BEGIN
        -- Only a repeated request id is a repeat: a duplicate key in the write is a conflict.
        DECLARE CONTINUE HANDLER FOR 1062 SET v_repeat = TRUE;
        INSERT INTO request_log (request_id, op, params_hash)
        VALUES (p_request_id, '{op.object_name}', v_hash);
    END;
    IF v_repeat THEN
        -- A locking read: the first copy's committed row, not this transaction's snapshot.
        SELECT {stored} FROM request_log WHERE request_id = p_request_id LOCK IN SHARE MODE;
        IF v_stored <> v_hash THEN
            SIGNAL SQLSTATE '23000' SET MYSQL_ERRNO = 1062, MESSAGE_TEXT = '{PARAMS_MISMATCH}';
        END IF;
    ELSE
{work_text}
    END IF;"""


def _audit(spec: Spec, action: str, condition: str) -> list[str]:
    if not spec.audit:
        return []
    key = spec.primary_key
    pairs = [f"'{c}', {c}" for c in design.view_columns(spec)]
    rows = [", ".join(pairs[i:i + 4]) for i in range(0, len(pairs), 4)]
    return [f"INSERT INTO {design.audit_table(spec)} "
            f"({key}, action, request_id, changed_at, row_data)",
            f"SELECT {key}, '{action}', p_request_id, NOW(), JSON_OBJECT(",
            *(f"           {row}{',' if i + 1 < len(rows) else ')'}" for i, row in enumerate(rows)),
            f"  FROM {spec.name} WHERE {condition};"]


def _create(spec: Spec, op: OpDesign) -> list[str]:
    names = [n for n in op.params if n != design.REQUEST_ID]
    key = spec.primary_key
    lines = [f"INSERT INTO {spec.name} ({', '.join(names)}, created_at, updated_at)",
             f"VALUES ({', '.join('p_' + n for n in names)}, NOW(), NOW());"]
    if spec.generated_key:
        lines.append(f"SET p_{key} = LAST_INSERT_ID();")
    return lines + _audit(spec, "create", f"{key} = p_{key}")


def _update(spec: Spec, op: OpDesign) -> list[str]:
    key = spec.primary_key
    sets = [f"{n} = COALESCE(p_{n}, {n})," for n in op.optional]
    where = f"{key} = p_{key}{_live(spec)}"
    return [f"UPDATE {spec.name}",
            "   SET " + "\n       ".join([*sets, "updated_at = NOW()"]),
            f" WHERE {where};",
            "-- 1 when the row exists, whether or not a value changed (as on PostgreSQL).",
            f"SELECT COUNT(*) INTO p_updated FROM {spec.name} WHERE {where};",
            *_audit(spec, "update", f"{where} AND p_updated = 1")]


def _delete(spec: Spec, op: OpDesign) -> list[str]:
    key = spec.primary_key
    where = f"{key} = p_{key}{_live(spec)}"
    if spec.soft_delete:
        return [*_audit(spec, "delete", where),
                f"UPDATE {spec.name} SET deleted_at = NOW(), updated_at = NOW()",
                f" WHERE {where};",
                "SET p_deleted = ROW_COUNT();"]
    return [*_audit(spec, "delete", where),
            f"DELETE FROM {spec.name} WHERE {where};",
            "SET p_deleted = ROW_COUNT();"]


def _grants(spec: Spec) -> str:
    lines = ["-- Least privilege for the application account, as in 090_grants.sql (which runs",
             "-- before this file and does not name these objects): EXECUTE on exactly the",
             "-- procedures the template uses, SELECT on its view, nothing on tables.",
             f"-- templates/{spec.name}.toml"]
    for op in design.ops(spec):
        if op.target is OpTarget.PROCEDURE:
            lines.append(f"GRANT EXECUTE ON PROCEDURE {op.object_name:<22} TO ${{app_user}};")
        else:
            lines.append(f"GRANT SELECT  ON {op.object_name:<32} TO ${{app_user}};")
    return "\n".join(lines)
