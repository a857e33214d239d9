"""brainlib.papers"""
