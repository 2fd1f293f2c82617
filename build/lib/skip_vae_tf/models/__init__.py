"""Encoders, decoders (gated PixelCNN, MLP) and the VAE that joins them."""
