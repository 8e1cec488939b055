"""mmsparse.datasets."""
