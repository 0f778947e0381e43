"""Feed adapters: each turns a source of market data into FeedBatches."""
