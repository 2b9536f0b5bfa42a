"""The admin role's built-in services.

Layer: operations (admin node).
"""
