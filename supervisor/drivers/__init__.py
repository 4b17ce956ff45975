"""WhatsApp drivers: one async :class:`~supervisor.drivers.base.Driver` protocol, one module per provider."""
