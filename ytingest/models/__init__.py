"""Synchronous wrappers of the ML libraries. Only ever called inside an executor thread."""
