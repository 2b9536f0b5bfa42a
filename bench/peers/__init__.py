"""Peer servers for the benchmark: the same one-row procedure fetch, written the usual ways."""
