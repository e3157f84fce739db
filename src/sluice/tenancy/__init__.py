"""Organisations → teams → users, service accounts and roles: the domain and its rules."""
