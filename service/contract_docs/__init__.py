"""Generators of the contract's documents (AsyncAPI, nats.micro schemas) from `service.contract`."""
