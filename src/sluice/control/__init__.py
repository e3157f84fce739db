"""Control-plane services: the use cases the admin API, the console and the CLI share (keys,
tenancy, provider credentials, routing-policy reloads, analytics), built once by the
lifespan and handed to each as one typed :class:`~sluice.control.plane.ControlPlane`."""
