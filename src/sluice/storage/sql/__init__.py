"""SQLAlchemy Core implementation of the storage protocols."""
