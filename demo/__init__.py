"""The demo: a simulated production to deploy to (AWS in moto, two colours, users' traffic), its
backends for the engine, and the commands that seed and run it. Installed only where DEMO is on."""
