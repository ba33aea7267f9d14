"""tenantgate mediator: verified token -> per-turn gate -> templated query -> shaped result."""
