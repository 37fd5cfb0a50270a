"""The wire: msgspec Structs and the codec. Version v1 grows only additively."""
