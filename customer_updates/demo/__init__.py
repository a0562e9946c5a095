"""`customer-updates demo`: the whole flow once, on embedded defaults."""
