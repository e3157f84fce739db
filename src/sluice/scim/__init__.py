"""SCIM 2.0 provisioning (RFC 7643/7644): an identity provider creates, changes and
deprovisions the users and teams of one organisation through the tenancy service."""
