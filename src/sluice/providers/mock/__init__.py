"""The mock provider: scripted answers for demos, tests and benchmarks, no network needed."""
