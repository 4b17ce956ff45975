"""The router: consumes inbound events from Redis Streams and turns them into contacts, tickets and messages."""
