"""Tenancy core: public tables, the one schema switch, provisioning and migrations across schemas.

This is the bottom layer of Atende: it imports nothing from ``supervisor``, ``saas`` or ``ui``.
"""
