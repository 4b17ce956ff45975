"""A local WhatsApp-like network for dev, demos, tests and load tests (``atende simulator``).

- ``network`` — the pure model (numbers, phones, groups, pairing, queues, acks, faults); no I/O.
- ``server`` — :class:`~supervisor.simulator.server.SimulatorServer`: the WebSocket endpoint and the control API.
- ``client`` — :class:`~supervisor.simulator.client.SimulatorClient`, the async control API client.
- ``cli`` — the ``atende simulator`` / ``atende sim`` verbs.

The driver that speaks to it is ``supervisor.drivers.simulator``; the protocol is in docs/simulator.md.
Importing this package loads only the pure model (no web framework).
"""

from supervisor.simulator.network import Network, SimConfig, SimError

__all__ = ["Network", "SimConfig", "SimError"]
