"""Shared math of the registry: parameter sets, per-example gradients, Gram ("ghost") dot
products, the exact influence-tuning gradient, gradient reversal.  Used by objectives and
metrics alike; never copied into them."""
