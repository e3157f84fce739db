"""Helpers shared by the native adapters (providers whose wire format is not OpenAI's):
reading OpenAI requests, writing OpenAI answers and chunks, splitting event streams, and the
thin HTTP I/O with deadlines and an error map by status."""
