"""The segundo role's warehouse: whBroker moves aged rows from a live (HOT) datasource to a
warehouse (COOL) one per a template's `[warehouse]` policy; cBroker serves reads of the COOL
templates like any request broker.

policy (the `[warehouse]` table, pure; the template loader reads it), mover (the whBroker
service). Importing this package imports neither.
"""
