"""Generative Evaluation Workbench: embeddings, exact metrics and interactive views for generative models."""

__version__ = "0.1.0"
