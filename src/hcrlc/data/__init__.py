"""Data stage: tree layout, synthetic trees, listing, split, labels, cloud masks, packed shards, torch dataset."""
