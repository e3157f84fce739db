"""Documents in chat: files attached to messages, forwarded natively to a deployment that
takes their type, else turned into text in the gateway (docs/documents.md)."""
