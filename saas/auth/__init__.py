"""Authentication: tokens, login, and the principal every API call runs as."""
