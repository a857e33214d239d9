"""brainlib.layers"""
