"""Public model names → deployments, and the choice among them."""
