"""The web console: server-rendered pages under ``/ui`` (see docs/console.md).

Every page acts as the signed-in person's :class:`~sluice.auth.principal.Principal` through
the same tenancy services as the admin API, so the console can never do more than the API
would let that person do.
"""
