"""Per-user models: fitting the SVMs, ranking feeds, training and the retrain queue."""
