"""The tenantgate command line."""
