"""Platform operators: platform staff who manage tenants from the public schema and never touch tenant data."""
