"""The service's work, importable and testable without BentoML: answering, batching, storage, runtime.

`service.py` at the project root is only the HTTP surface over these modules.
"""
