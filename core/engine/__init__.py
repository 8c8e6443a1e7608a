"""The engine: listen, capture, learn, route and deliver, over the store."""
