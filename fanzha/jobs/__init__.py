"""Batch jobs that run on Apache Spark (local mode in tests, a cluster in production)."""
