"""Tenant users: invitations, activation, roles, disabling, password resets and the caller's own profile."""
