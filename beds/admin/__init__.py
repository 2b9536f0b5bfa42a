"""The admin role's built-in services."""
