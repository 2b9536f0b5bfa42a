"""MariaDB / MySQL: `adapter` serves requests (over the connection pool of `pool`); `schema` is
the DBA tooling of `beds schema apply` and `beds templates check`.

Layer: infrastructure. Imports point one way: `schema` imports `adapter`, never the reverse; this
package imports none of its modules, so loading the tooling never loads more than it needs.
"""
