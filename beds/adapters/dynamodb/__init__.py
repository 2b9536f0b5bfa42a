"""DynamoDB: `adapter` serves requests through the API requests `requests` builds from what
`catalog` and `operations` parse out of `schema/dynamodb/*.json`; `schema` is the DBA tooling of
`beds schema apply` and `beds templates check`.

Layer: infrastructure. Imports point one way: `schema` -> `adapter` -> `requests` ->
`operations` -> `catalog`, never back; this package imports none of its modules.
"""
