"""The NumPy SWAT model: top-K, budgets, layers, hardware numerics and encodings.

Every RTL block is checked against this package, bit for bit.
"""
