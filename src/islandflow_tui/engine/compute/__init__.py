"""Stateful, event-time, watermark-driven operators over polars batches."""
