"""What operators run and read: health, metrics, Flower, structured logs."""
