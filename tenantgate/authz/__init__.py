"""tenantgate's OAuth 2.1 authorization server: its own process, its own credentials.

It runs as the session-manager database role and holds the token-signing key; the mediator keeps
only the public key. A person logs in at the company's identity provider, picks the customer on
the consent page, and the session opened on consent is what the access token carries.
"""
