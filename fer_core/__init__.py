"""fer_core: data, models, losses and the one training engine of the FER study book."""
__version__ = "0.1.0"
