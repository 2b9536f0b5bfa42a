"""The segundo role's warehouse: whBroker moves aged rows from a live (HOT) datasource to a
warehouse (COOL) one per a template's `[warehouse]` policy; cBroker serves reads of the COOL
templates like any request broker.

Layer: application. mover (the whBroker service); the `[warehouse]` table itself is template
format, read by `beds.templates.warehouse`. Importing this package imports nothing.
"""
