"""The one permission matrix: which role may do what. Rendered into the README; every API route declares the
permission it needs with ``guards=[requires(Permission.X)]``.

Roles are checked twice: the guard reads the role from the token (cheap, before any database work), and
``principal_context`` re-reads role, status and token version from the database inside the request's
transaction. Every role or status change bumps the user's token version, so an old token can never carry an
old role past the second check.

Ticket *visibility* is narrower than the permission for agents (only tickets assigned to them, or unassigned
ones of their queues or without a queue) and supervisors (their queues, tickets without a queue, and their own);
that rule lives in one place, ``saas.tickets.service.visible_sql``. Contacts are tenant-wide for staff; a contact's
history across tickets is open to whoever may see the contact (agents: a contact with a ticket visible to them).
"""

from __future__ import annotations

import enum

__all__ = ["MATRIX", "Permission", "Role", "allowed", "matrix_markdown"]


class Role(enum.StrEnum):
    OPERATOR = "operator"  # platform staff: public schema, platform endpoints only
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"


class Permission(enum.StrEnum):
    TICKETS_READ = "tickets:read"
    TICKETS_REPLY = "tickets:reply"
    TICKETS_UPDATE = "tickets:update"
    EVENTS_SUBSCRIBE = "events:subscribe"
    PROFILE_MANAGE = "profile:manage"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    CONTACTS_READ = "contacts:read"
    CONTACTS_WRITE = "contacts:write"
    CONTACTS_MANAGE = "contacts:manage"
    TAGS_MANAGE = "tags:manage"
    QUICK_REPLIES_USE = "quick-replies:use"
    QUICK_REPLIES_MANAGE = "quick-replies:manage"
    DASHBOARD_READ = "dashboard:read"
    QUEUES_READ = "queues:read"
    QUEUES_MANAGE = "queues:manage"
    CONNECTIONS_READ = "connections:read"
    CONNECTIONS_MANAGE = "connections:manage"
    SETTINGS_MANAGE = "settings:manage"
    AUDIT_READ = "audit:read"
    API_TOKENS_MANAGE = "api-tokens:manage"
    PLATFORM_TENANTS = "platform:tenants"


_TENANT_STAFF = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.AGENT})
MATRIX: dict[Permission, frozenset[Role]] = {
    Permission.TICKETS_READ: _TENANT_STAFF,
    Permission.TICKETS_REPLY: _TENANT_STAFF,
    Permission.TICKETS_UPDATE: _TENANT_STAFF,
    Permission.EVENTS_SUBSCRIBE: _TENANT_STAFF,
    Permission.PROFILE_MANAGE: _TENANT_STAFF,
    Permission.USERS_READ: frozenset({Role.ADMIN, Role.SUPERVISOR}),
    Permission.USERS_MANAGE: frozenset({Role.ADMIN}),
    Permission.CONTACTS_READ: _TENANT_STAFF,
    Permission.CONTACTS_WRITE: _TENANT_STAFF,
    Permission.CONTACTS_MANAGE: frozenset({Role.ADMIN, Role.SUPERVISOR}),
    Permission.TAGS_MANAGE: frozenset({Role.ADMIN, Role.SUPERVISOR}),
    Permission.QUICK_REPLIES_USE: _TENANT_STAFF,
    Permission.QUICK_REPLIES_MANAGE: frozenset({Role.ADMIN, Role.SUPERVISOR}),
    Permission.DASHBOARD_READ: frozenset({Role.ADMIN, Role.SUPERVISOR}),
    Permission.QUEUES_READ: _TENANT_STAFF,
    Permission.QUEUES_MANAGE: frozenset({Role.ADMIN}),
    Permission.CONNECTIONS_READ: frozenset({Role.ADMIN, Role.SUPERVISOR}),
    Permission.CONNECTIONS_MANAGE: frozenset({Role.ADMIN}),
    Permission.SETTINGS_MANAGE: frozenset({Role.ADMIN}),
    Permission.AUDIT_READ: frozenset({Role.ADMIN}),
    Permission.API_TOKENS_MANAGE: frozenset({Role.ADMIN}),
    Permission.PLATFORM_TENANTS: frozenset({Role.OPERATOR}),
}


def allowed(role: str, permission: Permission) -> bool:
    """True if ``role`` holds ``permission``; unknown roles hold nothing."""
    return role in MATRIX[permission]


def matrix_markdown() -> str:
    """The matrix as a Markdown table (the README shows exactly this)."""
    roles = list(Role)
    lines = ["| permission | " + " | ".join(r.value for r in roles) + " |", "|---|" + "---|" * len(roles)]
    for permission in Permission:
        cells = ["yes" if allowed(r.value, permission) else "-" for r in roles]
        lines.append(f"| `{permission.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
