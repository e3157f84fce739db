"""OpenID Connect: people sign in to the console through their organisation's identity
provider, and workloads call the data plane with the IdP's access tokens.

``metadata`` discovers an issuer and caches its keys, ``tokens`` verifies a JWT against them,
``transactions`` keeps a sign-in's state between the redirect and the callback, ``login`` runs
the authorization-code flow, ``provision`` turns verified claims into a user, ``bearer``
accepts access tokens on ``/v1/*``.
"""
