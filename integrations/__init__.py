"""Adapters around the outside world (repositories, GitHub Actions, AWS, notification channels,
inbound webhooks' signatures): they speak to it and report in words, and never touch the database."""
