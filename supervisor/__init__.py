"""WhatsApp sessions: the Ray actor tree (supervisor, session hosts), restart policy, drivers, the simulator,
the wire messages every provider is normalized into, and the Redis Streams they travel on.

Depends only on ``tenants``; never imports ``saas``.
"""
