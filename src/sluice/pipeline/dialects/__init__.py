"""Client wire formats (dialects): how each inbound API maps onto provider capabilities.

A dialect parses its requests, renders its errors, and, when the chosen provider does not
speak it natively, translates the request onto OpenAI chat and the answer back.
"""
