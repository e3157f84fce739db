"""Provider credentials managed through the admin API, encrypted at rest."""
