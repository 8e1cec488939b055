"""Hooks of mmsparse."""
