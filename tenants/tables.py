"""Piccolo classes for the public schema (see ``migrations/public`` for the DDL, which is authoritative).

Every class is bound to the ``public`` schema explicitly, so these queries work inside or outside a
tenant context and never depend on ``search_path``.
"""

from __future__ import annotations

from piccolo.columns import BigInt, BigSerial, Boolean, ForeignKey, Integer, Text, Timestamptz
from piccolo.table import Table

from tenants.db import DB

__all__ = ["Plan", "PlatformOperator", "SessionRegistry", "Tenant"]


class Plan(Table, tablename="plans", schema="public", db=DB):
    id = BigSerial(primary_key=True)
    slug = Text(unique=True)
    name = Text()
    max_users = Integer(null=True)
    max_connections = Integer(null=True)
    max_queues = Integer(null=True)
    created_at = Timestamptz()


class Tenant(Table, tablename="tenants", schema="public", db=DB):
    id = BigSerial(primary_key=True)
    slug = Text(unique=True)
    name = Text()
    schema_name = Text(unique=True)
    plan_id = ForeignKey(Plan)
    status = Text(default="active")
    dedicated_host = Boolean(default=False)
    created_at = Timestamptz()
    suspended_at = Timestamptz(null=True, default=None)


class PlatformOperator(Table, tablename="platform_operators", schema="public", db=DB):
    id = BigSerial(primary_key=True)
    email = Text()
    name = Text()
    password_hash = Text()
    active = Boolean(default=True)
    token_version = Integer(default=0)
    created_at = Timestamptz()


class SessionRegistry(Table, tablename="session_registry", schema="public", db=DB):
    id = BigSerial(primary_key=True)
    tenant_id = ForeignKey(Tenant)
    connection_id = BigInt()
    connection_key = Text(unique=True)
    provider = Text()
    desired_state = Text(default="running")
    state = Text(default="STOPPED")
    host = Text(null=True, default=None)
    lease_owner = Text(null=True, default=None)
    lease_token = BigInt(default=0)
    lease_expires_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz()
