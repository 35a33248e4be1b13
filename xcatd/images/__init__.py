"""Distro media, image definitions and (later) image builds."""
