"""tenantgate: Postgres-enforced tenant isolation for AI agents calling tools over MCP.

One import package, three parts, each its own trust boundary:

- ``tenantgate.mediator``: the MCP server the host talks to (tokens, protocol, the gate call);
- ``tenantgate.authz``: the OAuth authorization server that issues the mediator's tokens;
- ``tenantgate.cli``: what DBAs and operators run (migrations, tools, approvals, audit, demo).
"""
