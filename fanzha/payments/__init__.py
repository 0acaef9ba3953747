"""Money interception (止付冻结): ledgers, transfer checks, tracing and mule detection.

Engine code here imports no web or database modules, so it runs in the CLI, the API, and Spark jobs alike.
"""
