"""Piccolo configuration: the engine and the app registry.

The engine is defined in ``tenants.db`` (unconfigured until ``tenants.db.start`` points it at a database);
this file exposes it under the names Piccolo's tooling looks for.
"""

from piccolo.conf.apps import AppRegistry

from tenants.db import DB

__all__ = ["APP_REGISTRY", "DB"]

APP_REGISTRY = AppRegistry(apps=[])
