"""eesr: a replication of Zhang & Xue (2021), "Autoencoder With Emotion Embedding for
Speech Emotion Recognition", IEEE Access (2021). A thin library; the notebooks teach it."""

__version__ = "0.1.0"
