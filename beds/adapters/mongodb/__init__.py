"""MongoDB: `adapter` serves requests; `catalog` and `operations` read the named-operation schema
files (`schema/mongodb/*.json`); `schema` is the DBA tooling of `beds schema apply` and
`beds templates check`.

Layer: infrastructure. Imports point one way: `schema` -> `adapter` -> `operations` -> `catalog`,
never back; this package imports none of its modules.
"""
