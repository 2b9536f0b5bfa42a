"""PostgreSQL: `adapter` serves requests (its driver errors translated by `errors`); `schema` is
the DBA tooling of `beds schema apply` and `beds templates check`.

Layer: infrastructure. Imports point one way: `schema` imports `adapter`, never the reverse; this
package imports none of its modules.
"""
