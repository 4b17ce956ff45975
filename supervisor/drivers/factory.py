"""Which driver class serves which provider (imported lazily: optional providers need optional packages)."""

from __future__ import annotations

import importlib

from supervisor.drivers.base import Driver, DriverConfig

__all__ = ["make_driver"]

_DRIVERS = {
    "simulator": ("supervisor.drivers.simulator", "SimulatorDriver"),
}


def make_driver(config: DriverConfig) -> Driver:
    try:
        module_name, class_name = _DRIVERS[config.provider]
    except KeyError:
        raise ValueError(f"no driver for provider {config.provider!r}") from None
    driver_class = getattr(importlib.import_module(module_name), class_name)
    driver: Driver = driver_class(config)
    return driver
