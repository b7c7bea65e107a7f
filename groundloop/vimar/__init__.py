"""ViMaR (value-guided decoding with a margin reward): the CLIP similarity, the value model with
its TD(0) loss, and the decoders (greedy, best-of-N, VisVM sentence search, two-stage ViMaR)."""
