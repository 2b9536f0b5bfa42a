"""The operations plane of every node: control commands, events, metric snapshots, log
shipping and the /live /ready /metrics endpoints. The admin role's services are in beds.admin.

Layer: operations.
"""
