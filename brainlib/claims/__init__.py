"""brainlib.claims"""
