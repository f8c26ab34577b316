"""The catalogue: environments, services and approval policies, the data every feature app reads."""
