"""NATS: connection, the nats.micro service, reply publishing, subjects. The only layer importing nats."""
