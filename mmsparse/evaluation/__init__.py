"""mmsparse.evaluation."""
